from django.db import models
from django.utils.translation import gettext_lazy as _

from authms.ids import PrefixedIdField
from communication.models import CRITICAL_CATEGORIES, Category, Channel


class Template(models.Model):
    """A message body per tenant and channel, with `{{name}}` placeholders."""

    id = PrefixedIdField(prefix="tpl")
    tenant = models.ForeignKey(
        "authms.Tenant", on_delete=models.PROTECT, related_name="+", verbose_name=_("tenant")
    )
    code = models.SlugField(
        _("code"), max_length=64, help_text=_("What API clients pass as `template`, e.g. verify_code.")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    name = models.CharField(_("name"), max_length=200)
    subject = models.CharField(
        _("subject"), max_length=255, blank=True, help_text=_("Email only; may use placeholders.")
    )
    body = models.TextField(_("body"), help_text=_("Text with {{name}} placeholders."))
    provider_codes = models.JSONField(
        _("provider template codes"),
        default=dict,
        blank=True,
        help_text=_(
            'The approved template at each provider, sent instead of the text: e.g. {"submail": "abc12", '
            '"aliyun": "SMS_123"}. Providers that send templates only (Aliyun) need one.'
        ),
    )
    sensitive = models.BooleanField(
        _("sensitive"),
        default=False,
        help_text=_("Variable values (e.g. verification codes) are masked as ****** in stored logs."),
    )
    category = models.CharField(
        _("category"),
        max_length=20,
        choices=Category.choices,
        default=Category.GENERAL,
        help_text=_(
            "What recipients choose to receive or not (preferences). Security is critical: it cannot be "
            "switched off and quiet hours do not hold it back."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["code", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "code", "channel"], name="template_unique_code_per_channel"
            )
        ]

    def __str__(self):
        return f"{self.code} ({self.channel})"

    @property
    def critical(self) -> bool:
        return self.category in CRITICAL_CATEGORIES
