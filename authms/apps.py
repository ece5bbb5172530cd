from django.apps import AppConfig


class AuthmsConfig(AppConfig):
    name = "authms"
    verbose_name = "AuthMS"
