from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuthmsConfig(AppConfig):
    name = "authms"
    verbose_name = _("Accounts and tenants")

    def ready(self):
        from authms import lookups  # noqa: F401 - registers `__any`
        from authms.api import schema  # noqa: F401 - registers the OpenAPI auth extension
