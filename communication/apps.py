from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommunicationConfig(AppConfig):
    name = "communication"
    verbose_name = _("Communication")

    def ready(self):
        # Registers the Celery tasks in every process (web included): services enqueue them
        # by name rather than importing the module that imports the services.
        from django.core import checks

        from communication import tasks  # noqa: F401
        from providers.checks import check_channel_providers

        checks.register(check_channel_providers)

        # ESP tracking webhooks (anymail) → logs and suppressions. A webhook without basic
        # auth or a signature is refused (api/email_webhooks.py), so anymail's warning about
        # one would only repeat that.
        import warnings

        from anymail.exceptions import AnymailInsecureWebhookWarning
        from anymail.signals import tracking

        warnings.filterwarnings("ignore", category=AnymailInsecureWebhookWarning)

        from communication.services.email_tracking import on_tracking

        tracking.connect(on_tracking, dispatch_uid="communication.email_tracking")
