from datetime import UTC

from django.conf import settings
from django.core.validators import RegexValidator
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from authms.api.envelope import rfc3339
from authms.api.fields import BoundedListField, StrictCharField
from authms.local_time import validate_quiet_hours, validate_time_zone
from communication.masking import mask_recipient, redact_recipient
from communication.models import Category, Channel, CommunicationLog, Device


class CommunicationLogSerializer(serializers.ModelSerializer):
    """dto.CommunicationLogResponse, plus the extension fields."""

    tenant_id = serializers.CharField()
    user_id = serializers.CharField()
    template_id = serializers.CharField(allow_null=True)
    recipient = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    status_detail = serializers.SerializerMethodField(
        help_text="Finer state: queued, retrying, reconciling (pending); invalid, suppressed, rejected, "
        "gave_up, unknown, undelivered (failed); null when there is nothing finer to say."
    )

    class Meta:
        model = CommunicationLog
        fields = [
            "id",
            "tenant_id",
            "user_id",
            "channel",
            "provider",
            "template_id",
            "recipient",
            "subject",
            "content",
            "status",
            "status_detail",
            "error",
            "response",
            "batch_id",
            "provider_message_id",
            "sent_at",
            "delivered_at",
            "created_at",
            "updated_at",
        ]

    def get_recipient(self, log) -> str:
        return mask_recipient(log.channel, log.recipient)

    def get_subject(self, log) -> str | None:
        return log.subject or None

    def get_status_detail(self, log) -> str | None:
        return log.status_detail or None

    def to_representation(self, log):
        """Built directly: a bulk answer carries up to 10,000 logs, and DRF's per-field
        machinery was the largest cost of the request. Keys are pinned to Meta.fields by a test."""
        return {
            "id": log.id,
            "tenant_id": log.tenant_id,
            "user_id": log.user_id,
            "channel": log.channel,
            "provider": log.provider,
            "template_id": log.template_id,
            "recipient": mask_recipient(log.channel, log.recipient),
            "subject": log.subject or None,
            "content": log.content,
            "status": log.status,
            "status_detail": log.status_detail or None,
            "error": redact_recipient(log.error, log.channel, log.recipient),
            "response": redact_recipient(log.response, log.channel, log.recipient),
            "batch_id": log.batch_id,
            "provider_message_id": log.provider_message_id,
            "sent_at": rfc3339(log.sent_at),
            "delivered_at": rfc3339(log.delivered_at),
            "created_at": rfc3339(log.created_at),
            "updated_at": rfc3339(log.updated_at),
        }


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an explicit offset, in UTC: a naive time is ambiguous (whose 09:00?)."""

    default_error_messages = {
        "naive": gettext_lazy("Give the time with its offset, e.g. 2026-12-01T09:00:00+08:00."),
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
        return super().to_internal_value(value).astimezone(UTC)


class BulkSendRequestSerializer(serializers.Serializer):
    """dto.BulkSendRequest: shape only; the business rules live in services.bulk_send.

    Optional fields accept null as "absent".
    """

    channel = serializers.ChoiceField(
        choices=["sms", "email", "push"],
        error_messages={
            "invalid_choice": gettext_lazy("Unknown channel {input}; allowed values: sms, email, push.")
        },
        help_text="push: `recipients` are user ids; each of their active devices gets a log.",
    )
    content = StrictCharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)
    recipients = BoundedListField(
        max_items=lambda: settings.BULK_MAX_RECIPIENTS,
        child=StrictCharField(allow_blank=True, trim_whitespace=False, max_length=320),
        allow_empty=False,
        error_messages={
            "empty": gettext_lazy("At least one recipient is required."),
            "not_a_list": gettext_lazy("Must be a list of strings."),
        },
    )
    subject = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=255)
    template = StrictCharField(required=False, allow_null=True, allow_blank=False, max_length=64)
    user_id = StrictCharField(required=False, allow_null=True, allow_blank=False, max_length=40)
    variables = serializers.DictField(
        child=StrictCharField(allow_blank=True, trim_whitespace=False), required=False
    )
    send_at = AwareDateTimeField(
        required=False,
        allow_null=True,
        help_text="Schedule: ISO 8601 with an offset, in the future and at most 35 days ahead.",
    )
    cancellation_key = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=False,
        max_length=100,
        help_text="Your name for what to cancel together (POST /communication/cancel).",
    )
    category = serializers.ChoiceField(
        choices=Category.values,
        required=False,
        allow_null=True,
        error_messages={
            "invalid_choice": gettext_lazy("Unknown category {input}; allowed values: %(known)s.")
            % {"known": ", ".join(Category.values)}
        },
        help_text="What the message is about, for recipients' preferences (default: the template's, "
        "else general). Free text cannot be security (critical): use a template.",
    )
    data = serializers.DictField(
        child=StrictCharField(allow_blank=True, trim_whitespace=False),
        required=False,
        help_text="Push only: string key-value data for the app (keys from, message_type, log_id, "
        "notification, google.* and gcm.* are reserved).",
    )
    link = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=1024,
        validators=[
            RegexValidator(
                r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$",
                gettext_lazy("A URL without spaces, e.g. https://… or myapp://…."),
            )
        ],
        help_text="Push only: the deep link opened when the notification is tapped.",
    )

    def validate_data(self, value):
        reserved = [
            key for key in value
            if not key or key in ("from", "message_type", "log_id", "notification") or key.startswith(("google.", "gcm."))
        ]  # fmt: skip
        if reserved:
            raise serializers.ValidationError(
                gettext_lazy("Reserved or empty keys: %(keys)s.")
                % {"keys": ", ".join(repr(k) for k in reserved)}
            )
        return value


class CancelRequestSerializer(serializers.Serializer):
    cancellation_key = StrictCharField(max_length=100)


class BatchSerializer(serializers.Serializer):
    batch_id = serializers.CharField()
    channel = serializers.CharField()
    user_id = serializers.CharField()
    sender_id = serializers.CharField()
    total = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Logs per status.")
    completed = serializers.BooleanField(help_text="True once no log of the batch is pending.")
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    send_at = serializers.DateTimeField(allow_null=True, help_text="When a scheduled batch goes out.")
    cancellation_key = serializers.CharField(allow_null=True)


class DeviceSerializer(serializers.Serializer):
    """A push device as the API shows it: the token or endpoint masked (first 6, last 4)."""

    id = serializers.CharField()
    user_id = serializers.CharField()
    platform = serializers.CharField()
    provider = serializers.CharField()
    token = serializers.CharField(source="masked_token", help_text="Masked: first 6 and last 4 characters.")
    app_id = serializers.CharField()
    device_id = serializers.CharField()
    name = serializers.CharField()
    locale = serializers.CharField()
    time_zone = serializers.CharField()
    app_version = serializers.CharField()
    active = serializers.BooleanField()
    failure_count = serializers.IntegerField()
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    deactivated_at = serializers.DateTimeField(allow_null=True)


class DeviceRegisterSerializer(serializers.Serializer):
    """POST /devices: an FCM token, or a browser's Web Push subscription (`toJSON()`); the
    target's own rules are in communication.push_targets."""

    platform = serializers.ChoiceField(choices=Device.Platform.values)
    provider = serializers.ChoiceField(
        choices=Device.Provider.values,
        required=False,
        help_text="Default: webpush for the web platform with a subscription, else fcm.",
    )
    token = StrictCharField(required=False, max_length=1024, help_text="FCM registration token.")
    subscription = serializers.DictField(
        required=False, help_text='Web Push: {"endpoint": "https://…", "keys": {"p256dh": "…", "auth": "…"}}.'
    )
    app_id = StrictCharField(required=False, allow_blank=True, max_length=255)
    device_id = StrictCharField(required=False, allow_blank=True, max_length=64)
    name = StrictCharField(required=False, allow_blank=True, max_length=100)
    locale = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=35,
        validators=[
            RegexValidator(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", gettext_lazy("A locale like zh-CN."))
        ],
    )
    time_zone = StrictCharField(
        required=False, allow_blank=True, max_length=64, validators=[validate_time_zone]
    )
    app_version = StrictCharField(required=False, allow_blank=True, max_length=50)


class PreferenceChoiceSerializer(serializers.Serializer):
    category = serializers.ChoiceField(
        choices=Category.values,
        error_messages={
            "invalid_choice": gettext_lazy("Unknown category {input}; allowed values: %(known)s.")
            % {"known": ", ".join(Category.values)}
        },
    )
    channel = serializers.ChoiceField(
        choices=["sms", "email", "push"],
        error_messages={
            "invalid_choice": gettext_lazy("Unknown channel {input}; allowed values: sms, email, push.")
        },
    )
    enabled = serializers.BooleanField()


class PreferenceLineSerializer(PreferenceChoiceSerializer):
    critical = serializers.BooleanField(help_text="Cannot be switched off.")
    source = serializers.ChoiceField(
        choices=["user", "tenant", "default"],
        help_text="user: your choice; tenant: the tenant's default; default: on.",
    )


class PreferencesSerializer(serializers.Serializer):
    """GET /preferences: every category × channel, with the user's quiet hours."""

    time_zone = serializers.CharField(help_text="IANA name; empty: a device's, else the tenant's.")
    quiet_hours = serializers.CharField(help_text='"HH:MM-HH:MM", "off", or empty (the tenant\'s).')
    effective_quiet_hours = serializers.CharField(help_text='What applies now: a window or "off".')
    effective_time_zone = serializers.CharField()
    language = serializers.CharField(help_text="Of your notices; empty: Accept-Language, else the tenant's.")
    preferences = PreferenceLineSerializer(many=True)


class PreferencesUpdateSerializer(serializers.Serializer):
    """PUT /preferences: any of the fields; the listed choices are set, the others kept."""

    time_zone = StrictCharField(
        required=False, allow_blank=True, max_length=64, validators=[validate_time_zone]
    )
    quiet_hours = StrictCharField(
        required=False, allow_blank=True, max_length=11, validators=[validate_quiet_hours]
    )
    language = serializers.ChoiceField(
        choices=[code for code, _name in settings.LANGUAGES] + [""], required=False,
        help_text="Of your notices; empty: the request's Accept-Language, else the tenant's.",
    )  # fmt: skip
    preferences = BoundedListField(
        max_items=lambda: len(Category.values) * len(Channel.values),
        child=PreferenceChoiceSerializer(),
        required=False,
        error_messages={"not_a_list": gettext_lazy("Must be a list of {{category, channel, enabled}}.")},
    )


class DeliveryControlsSerializer(serializers.Serializer):
    """A tenant's delivery controls; PATCH with any of them (rules in docs/API.md)."""

    send_caps = serializers.DictField(
        required=False,
        help_text='Platform admins only: {"sms": {"day": 10000, "month": 200000}, "spend": {"day": 500}}; '
        "0 = no cap; left out: the deployment's CAP_* default.",
    )
    time_zone = StrictCharField(
        required=False, allow_blank=True, max_length=64, validators=[validate_time_zone],
        help_text="IANA name for users with none; empty: CAPS_TIME_ZONE.",
    )  # fmt: skip
    quiet_hours = StrictCharField(
        required=False, allow_blank=True, max_length=11, validators=[validate_quiet_hours],
        help_text='"HH:MM-HH:MM" in each recipient\'s local time; empty: none.',
    )  # fmt: skip
    preference_defaults = serializers.DictField(
        required=False, help_text='e.g. {"marketing": {"sms": false}}: off unless a user switches it on.'
    )


class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True)
    url = serializers.CharField(
        max_length=1024, help_text="https; a public address (checked at save and at every delivery)."
    )
    description = StrictCharField(required=False, allow_blank=True, max_length=200)
    event_types = serializers.ListField(
        child=StrictCharField(max_length=40), required=False, help_text="Empty: every type."
    )
    enabled = serializers.BooleanField(required=False)
    disabled_reason = serializers.CharField(read_only=True)
    failing_since = serializers.DateTimeField(read_only=True, allow_null=True)
    rotation_ends_at = serializers.DateTimeField(
        source="previous_secret_expires_at", read_only=True, allow_null=True,
        help_text="Until then the previous secret signs beside the new one.",
    )  # fmt: skip
    created_at = serializers.DateTimeField(read_only=True)


class WebhookSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="whsec_…: shown only now; store it.")


class WebhookAttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    response = serializers.CharField(help_text="The first 2 KB of the answer.")
    latency_ms = serializers.IntegerField()
    manual = serializers.BooleanField()


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField(source="event.id")
    event_type = serializers.CharField(source="event.type")
    state = serializers.CharField()
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    manual = serializers.BooleanField()
    attempt_log = WebhookAttemptSerializer(many=True)


class WebhookRecoverSerializer(serializers.Serializer):
    since = AwareDateTimeField(help_text="ISO 8601 with an offset; at most 14 days back.")
