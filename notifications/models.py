from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from authms.ids import PrefixedIdField


class NotificationType(models.TextChoices):
    SYSTEM = "system", _("System")
    SECURITY = "security", _("Security")
    ACCOUNT = "account", _("Account")
    COMMUNICATION = "communication", _("Communication")


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class Notification(models.Model):
    id = PrefixedIdField(prefix="ntf")
    tenant = models.ForeignKey(
        "authms.Tenant", on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("user"),
    )
    type = models.CharField(_("type"), max_length=20, choices=NotificationType.choices)
    event_type = models.CharField(
        _("event type"), max_length=100, help_text=_("Dotted, e.g. status.incident.created.")
    )
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.MEDIUM
    )
    title = models.CharField(_("title"), max_length=200)
    content = models.TextField(_("content"), blank=True)
    action_url = models.CharField(_("action URL"), max_length=2000, null=True, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    is_read = models.BooleanField(_("read"), default=False)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    # A notice the service wrote from notifications.messages: rendered again in the reader's language.
    template = models.CharField(_("template"), max_length=100, blank=True, editable=False)
    params = models.JSONField(_("template parameters"), default=dict, blank=True, editable=False)
    seen_at = models.DateTimeField(_("seen at"), null=True, blank=True)  # the bell was opened on it
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="ntf_inbox"),
            # Unread rows are a small share of an inbox: this partial index keeps the
            # unread list and the unread count fast at millions of rows.
            models.Index(
                fields=["user", "-created_at", "-id"], name="ntf_unread", condition=models.Q(is_read=False)
            ),
            models.Index(fields=["tenant", "-created_at"], name="ntf_tenant_created"),
            models.Index(fields=["created_at"], name="ntf_read_created", condition=models.Q(is_read=True)),
        ]

    def __str__(self):
        return self.title


class InboxCount(models.Model):
    """A user's unread and unseen notifications (archived ones count in neither), kept by
    database triggers in the transaction of every insert, update and delete, so the badge is
    one indexed row at any inbox size and exact under concurrent writes."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        db_constraint=False,
    )
    unread = models.IntegerField(default=0)
    unseen = models.IntegerField(default=0)

    class Meta:
        db_table = "notifications_inbox_count"

    def __str__(self):
        return f"{self.user_id}: {self.unread} unread, {self.unseen} unseen"
