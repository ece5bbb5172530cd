from rest_framework import serializers

from communication.masking import mask_recipient
from communication.models import CommunicationLog


class CommunicationLogSerializer(serializers.ModelSerializer):
    """dto.CommunicationLogResponse, plus the extension fields."""

    tenant_id = serializers.CharField()
    user_id = serializers.CharField()
    recipient = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()

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
