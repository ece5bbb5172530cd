from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessageTemplatesConfig(AppConfig):
    """Message templates kept in the database. The explicit label keeps this app apart from
    Django's HTML `templates/` folders."""

    name = "templates"
    label = "message_templates"
    verbose_name = _("Message templates")
