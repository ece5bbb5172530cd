import math

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from authms.throttling import login_attempt_wait, login_succeeded


class AuthmsAdminSite(admin.AdminSite):
    """The staff console: Django's admin with a delivery dashboard on the index page."""

    site_header = _("AuthMS Communication")
    site_title = _("AuthMS Communication")
    index_title = _("Staff console")
    index_template = "admin/authms_index.html"
    # "View site": the API's documentation (this service has no public site of its own).
    site_url = f"/{settings.API_PREFIX}docs"

    def login(self, request, extra_context=None):
        """Django's login behind the same attempt limits as POST /auth/token (429 + Retry-After)."""
        username = request.POST.get("username", "") if request.method == "POST" else ""
        if request.method == "POST" and (wait := login_attempt_wait(request=request, username=username)):
            seconds = math.ceil(wait)
            response = TemplateResponse(
                request,
                "admin/login_throttled.html",
                {**self.each_context(request), "title": _("Log in"), "retry_after": seconds},
                status=429,
            )
            response["Retry-After"] = str(seconds)
            return response
        response = super().login(request, extra_context)
        if request.method == "POST" and request.user.is_authenticated:
            login_succeeded(username=username)
        return response

    def index(self, request, extra_context=None):
        from communication.selectors import delivery_dashboard
        from communication.services.health import providers_overview
        from providers.registry import providers_in_use

        extra = {}
        if request.user.is_staff:
            extra["dashboard"] = delivery_dashboard(actor=request.user)
        if request.user.is_platform_admin:  # gateways serve every tenant: platform staff only
            extra["providers"] = providers_overview(providers_in_use())
            extra["providers_window"] = {
                "window": settings.HEALTH_WINDOW_SECONDS // 60,
                "after": settings.HEALTH_UNDELIVERED_AFTER_SECONDS // 60,
                "until": settings.HEALTH_UNDELIVERED_WINDOW_SECONDS // 60,
            }
        return super().index(request, {**extra, **(extra_context or {})})


class AuthmsAdminConfig(AdminConfig):
    """Installs AuthmsAdminSite as the default admin site (INSTALLED_APPS names this)."""

    default_site = "authms.admin_site.AuthmsAdminSite"
