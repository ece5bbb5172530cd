"""What a provider is handed for a log: its stored text, the template code at that provider."""

from typing import TYPE_CHECKING

from communication.channels import channel_spec
from communication.models import CommunicationLog
from communication.unsubscribe import unsubscribe_url
from providers.base import OutgoingMessage

if TYPE_CHECKING:
    from communication.services.dispatch import ClaimedLog


def template_code(log: "CommunicationLog | ClaimedLog") -> str:
    """The template's code at the log's provider ("" for free text). Logs queued before
    templates had a code per provider stored one `provider_template_id`."""
    payload = log.send_payload or {}
    codes = payload.get("provider_codes") or {}
    return codes.get(log.provider, "") if codes else payload.get("provider_template_id", "")


def outgoing_message(
    log: "CommunicationLog | ClaimedLog", reference: str = "", target: dict | None = None
) -> OutgoingMessage:
    """`target`: for push, where the log's device is at its push service (none when the device
    was deleted or deactivated since)."""
    payload = log.send_payload or {}
    return OutgoingMessage(
        log_id=log.id,
        tenant_id=log.tenant_id,
        channel=log.channel,
        recipient=log.recipient,
        subject=payload.get("subject", log.subject),
        body=payload.get("body", log.content),
        provider_template_id=template_code(log),
        variables=payload.get("variables", {}),
        unsubscribe_url=(
            unsubscribe_url(
                tenant_id=log.tenant_id,
                channel=log.channel,
                recipient=log.recipient,
                category=payload.get("category", ""),
            )
            if channel_spec(log.channel).unsubscribe_link
            else ""
        ),
        reference=reference,
        data=(log.push_data or {}).get("data", {}),
        link=(log.push_data or {}).get("link", ""),
        target=target or {},
    )
