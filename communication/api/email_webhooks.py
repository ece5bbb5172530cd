"""The ESPs' tracking webhooks: django-anymail's own views (each validates its ESP's way:
basic auth with ANYMAIL_WEBHOOK_SECRET, Mailgun's and others' signatures), answering bad
input with the API's envelope instead of a 500.

`/api/v1/providers/anymail/<esp>/tracking/` for every ESP anymail knows (postmark, mailgun,
amazon_ses, sendgrid, brevo, …). Events go out on anymail's `tracking` signal, which
communication.apps connects to the status path (services/email_tracking.py).
"""

import logging

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailConfigurationError, AnymailWebhookValidationFailure
from django.http import HttpResponse
from django.utils.translation import gettext as _

from authms.api.exceptions import json_error_response
from authms.api.routing import api_path

logger = logging.getLogger(__name__)

# What a body that is not the ESP's payload raises inside anymail's parsers.
MALFORMED = (ValueError, LookupError, TypeError, AttributeError)


class GuardedTracking:
    """Mixed in before an anymail tracking view: a forged request is a 403, a malformed one a
    400 (anymail lets both through as exceptions); events are sent as anymail sends them.

    An ESP whose webhook could not be authenticated here (no signing key, or no basic-auth
    secret for an ESP that signs nothing) answers 404: unauthenticated status changes and
    suppressions are never accepted."""

    def __init__(self, **kwargs):
        self.unconfigured = ""
        try:
            super().__init__(**kwargs)
        except AnymailConfigurationError as exc:
            self.unconfigured = str(exc)
            return
        if getattr(self, "warn_if_no_basic_auth", False) and not getattr(self, "basic_auth", None):
            self.unconfigured = "set ANYMAIL_WEBHOOK_SECRET"

    def post(self, request, *args, **kwargs):
        if self.unconfigured:
            logger.warning(
                "A %s tracking webhook arrived, but it is not configured: %s",
                self.esp_name,
                self.unconfigured,
            )
            return json_error_response(404, _("Tracking webhooks of this ESP are not configured here."))
        try:
            self.run_validators(request)
            events = self.parse_events(request)
        except AnymailWebhookValidationFailure as exc:
            logger.warning("Rejected a %s tracking webhook: %s", self.esp_name, exc)
            return json_error_response(403, _("This request is not signed by the ESP."))
        except (*MALFORMED, AnymailConfigurationError) as exc:  # also: an inbound payload sent here
            logger.info("Malformed %s tracking webhook: %r", self.esp_name, exc)
            return json_error_response(400, _("This is not a tracking payload of this ESP."))
        for event in events:
            self.signal.send(sender=self.__class__, event=event, esp_name=self.esp_name)
        return HttpResponse()


def _tracking_patterns():
    for pattern in anymail_urls.urlpatterns:
        if not pattern.name or not pattern.name.endswith("_tracking_webhook"):
            continue
        view = pattern.callback.view_class
        guarded = type(f"Guarded{view.__name__}", (GuardedTracking, view), {})
        esp = pattern.name.removesuffix("_tracking_webhook")
        yield api_path(f"providers/anymail/{esp}/tracking", guarded.as_view(), name=f"anymail-{esp}-tracking")


urlpatterns = list(_tracking_patterns())
