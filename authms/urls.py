from django.conf import settings
from django.contrib import admin
from django.http import HttpResponseServerError
from django.template import loader
from django.templatetags.static import static
from django.urls import include, path
from django.utils.translation import gettext
from django.views import defaults
from django.views.generic import RedirectView

from authms.api.exceptions import json_error_response
from authms.api.routing import api_path
from authms.api.views import SchemaView, SwaggerView
from authms.metrics import metrics_view
from authms.middleware import current_request_id
from communication.views import push_demo, push_worker
from notifications.views import bell_demo

# Django tries patterns in order: the API first, and the inbox (polled by every open page)
# before the sending endpoints.
api_patterns = [
    path("", include("notifications.api.urls")),
    path("", include("authms.api.urls")),
    path("", include("communication.api.urls")),
    api_path("schema", SchemaView.as_view(), name="schema"),
    api_path("docs", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path(settings.API_PREFIX, include(api_patterns)),
    path("favicon.ico", RedirectView.as_view(url=static("authms/favicon.svg"), permanent=True)),
    path("push/demo/", push_demo, name="push-demo"),
    path("push/sw.js", push_worker, name="push-worker"),
    path("notifications/demo/", bell_demo, name="bell-demo"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
]


def _is_api(request) -> bool:
    return request.path.startswith("/" + settings.API_PREFIX)


def handler400(request, exception):
    if _is_api(request):
        return json_error_response(400, gettext("Bad request."))
    return defaults.bad_request(request, exception)


def handler403(request, exception):
    if _is_api(request):
        return json_error_response(403, gettext("Forbidden."))
    return defaults.permission_denied(request, exception)


def handler404(request, exception):
    """JSON envelope under the API prefix, Django's page everywhere else."""
    if _is_api(request):
        return json_error_response(404, gettext("No endpoint matches this path."))
    return defaults.page_not_found(request, exception)


def handler500(request):
    """JSON under the API prefix; elsewhere a page that gives the request id to quote to
    support (it is in the logs next to the traceback)."""
    if _is_api(request):
        return json_error_response(500)
    try:
        html = loader.render_to_string("500.html", {"request_id": current_request_id()})
    except Exception:  # noqa: BLE001 - the error page must not fail in its turn
        return defaults.server_error(request)
    return HttpResponseServerError(html)
