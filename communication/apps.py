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
