from django.apps import AppConfig


class AuthmsConfig(AppConfig):
    name = "authms"
    verbose_name = "AuthMS"

    def ready(self):
        from authms.api import schema  # noqa: F401 - registers the OpenAPI auth extension
