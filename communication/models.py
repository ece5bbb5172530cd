from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from authms.ids import PrefixedIdField


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    PUSH = "push", _("Push")


class Status(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    DELIVERED = "delivered", _("Delivered")


# The one place the status rule lives: pending → sent → delivered | failed, or
# pending → failed. A report never moves a log backwards.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.SENT, Status.FAILED, Status.DELIVERED}),
    Status.SENT: frozenset({Status.DELIVERED, Status.FAILED}),
    Status.DELIVERED: frozenset(),
    Status.FAILED: frozenset(),
}
TERMINAL_STATUSES = frozenset({Status.DELIVERED, Status.FAILED})


def can_transition(current: str, new: str) -> bool:
    return new in ALLOWED_TRANSITIONS[current]


def statuses_that_may_become(new: str) -> list[str]:
    """The current statuses from which `new` is allowed (for bulk, filter-based updates)."""
    return [current for current, targets in ALLOWED_TRANSITIONS.items() if new in targets]


RESPONSE_MAX_BYTES = 2048


class CommunicationLog(models.Model):
    id = PrefixedIdField(prefix="log")
    tenant = models.ForeignKey("authms.Tenant", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    provider = models.CharField(max_length=32)
    template_id = models.CharField(max_length=32, null=True, blank=True)
    recipient = models.CharField(max_length=320, help_text=_("Normalised, stored in full."))
    subject = models.CharField(max_length=255, blank=True, default="")
    content = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(null=True, blank=True)
    response = models.TextField(null=True, blank=True)
    batch_id = models.CharField(max_length=32, null=True, blank=True)
    provider_message_id = models.CharField(max_length=64, null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "communication_log"
        verbose_name = _("communication log")
        verbose_name_plural = _("communication logs")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "user", "-created_at", "-id"], name="log_tenant_user_created"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="log_tenant_created"),
            models.Index(fields=["tenant", "status", "-created_at", "-id"], name="log_tenant_status_created"),
            models.Index(
                fields=["tenant", "channel", "-created_at", "-id"], name="log_tenant_channel_created"
            ),
            models.Index(fields=["-created_at", "-id"], name="log_created"),
            models.Index(fields=["provider_message_id"], name="log_provider_message_id"),
            models.Index(fields=["batch_id"], name="log_batch_id"),
            models.Index(fields=["recipient"], name="log_recipient"),
        ]

    def __str__(self):
        return self.id
