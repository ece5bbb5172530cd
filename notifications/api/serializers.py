import json

from django.core.validators import RegexValidator
from django.utils.translation import gettext, gettext_lazy
from rest_framework import serializers

from authms.api.envelope import rfc3339
from authms.api.fields import BoundedListField, StrictCharField
from notifications.messages import TEMPLATES, render
from notifications.models import Notification, NotificationType, Priority
from notifications.services import ACTION_URL_MAX, EVENT_TYPE, TITLE_MAX


class NotificationSerializer(serializers.ModelSerializer):
    """dto.NotificationResponse. `metadata` is a JSON-encoded string, as the wiki documents."""

    tenant_id = serializers.CharField()
    user_id = serializers.CharField()
    metadata = serializers.CharField(
        help_text='JSON-encoded object, e.g. "{\\"ip\\":\\"1.2.3.4\\"}"; "{}" when empty.'
    )

    class Meta:
        model = Notification
        fields = [
            "id",
            "tenant_id",
            "user_id",
            "type",
            "event_type",
            "priority",
            "title",
            "content",
            "action_url",
            "metadata",
            "is_read",
            "read_at",
            "created_at",
            "seen_at",  # extensions: inbox v2 states
            "archived_at",
        ]

    def to_representation(self, notification):
        title, content = notification.title, notification.content
        if notification.template in TEMPLATES:  # in the reader's language (the view activated it)
            title, content = render(notification.template, notification.params)
        return {
            "id": notification.id,
            "tenant_id": notification.tenant_id,
            "user_id": notification.user_id,
            "type": notification.type,
            "event_type": notification.event_type,
            "priority": notification.priority,
            "title": title,
            "content": content,
            "action_url": notification.action_url or None,
            "metadata": json.dumps(notification.metadata or {}, ensure_ascii=False, separators=(",", ":")),
            "is_read": notification.is_read,
            "read_at": rfc3339(notification.read_at),
            "created_at": rfc3339(notification.created_at),
            "seen_at": rfc3339(notification.seen_at),
            "archived_at": rfc3339(notification.archived_at),
        }


class AdminNotifySerializer(serializers.Serializer):
    """Shape of POST /admin/notifications; the rules are in notifications.services.notify."""

    audience = serializers.ChoiceField(
        choices=["user", "users", "tenant"],
        error_messages={
            "invalid_choice": gettext_lazy("Unknown audience {input}; allowed values: user, users, tenant.")
        },
    )
    user_id = StrictCharField(required=False, max_length=40)
    user_ids = BoundedListField(child=StrictCharField(max_length=40), required=False, max_items=10_000)
    tenant_id = StrictCharField(
        required=False, max_length=40, help_text="Platform admins: the target tenant."
    )
    type = serializers.ChoiceField(choices=NotificationType.values)
    event_type = StrictCharField(
        max_length=100,
        validators=[
            RegexValidator(
                EVENT_TYPE,
                gettext_lazy("event_type must be dotted lower-case words, e.g. status.incident.created."),
            )
        ],
    )
    priority = serializers.ChoiceField(choices=Priority.values, default=Priority.MEDIUM)
    title = StrictCharField(max_length=TITLE_MAX)
    content = StrictCharField(required=False, allow_blank=True, default="")
    action_url = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=ACTION_URL_MAX)
    metadata = serializers.DictField(required=False, default=dict)

    def validate(self, data):
        audience = data["audience"]
        if audience == "user" and not data.get("user_id"):
            raise serializers.ValidationError({"user_id": gettext("Required when audience is user.")})
        if audience == "users" and not data.get("user_ids"):
            raise serializers.ValidationError(
                {"user_ids": gettext("A non-empty list is required when audience is users.")}
            )
        if len(json.dumps(data.get("metadata") or {})) > 10_000:
            raise serializers.ValidationError({"metadata": gettext("At most 10,000 characters of JSON.")})
        return data
