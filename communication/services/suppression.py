"""The suppression list: who must not be sent to, and the replies that put them there."""

import logging
from collections.abc import Iterable

from authms.errors import ValidationError
from communication.models import (
    CommunicationLog,
    Suppression,
)
from communication.recipients import normalise, suppression_key

logger = logging.getLogger(__name__)


def suppressed_keys(*, tenant_id: str, channel: str, recipients: Iterable[str]) -> set[str]:
    """The suppression keys (see suppression_key) of those recipients the tenant has suppressed."""
    keys = {suppression_key(channel, recipient) for recipient in recipients}
    return set(
        Suppression.objects.filter(tenant_id=tenant_id, channel=channel, recipient__in=keys).values_list(
            "recipient", flat=True
        )
    )


def suppression_add(
    *, tenant_id: str, channel: str, recipient: str, reason: str = Suppression.Reason.MANUAL
) -> bool:
    """Put a recipient (normalised first) on a tenant's suppression list.

    Adding twice is harmless; returns True only when the entry is new.
    """
    normalised = normalise(channel, recipient)
    if not normalised.is_valid:
        raise ValidationError.for_field("recipient", normalised.error)
    _suppression, created = Suppression.objects.get_or_create(
        tenant_id=tenant_id,
        channel=channel,
        recipient=suppression_key(channel, normalised.value),
        defaults={"reason": reason},
    )
    return created


UNSUBSCRIBE_REPLIES = frozenset({"td", "t", "退订", "unsubscribe", "stop"})


def suppress_sms_reply(*, provider: str, address: str, content: str) -> int:
    """An SMS reply such as "TD" or "退订" suppresses the number in every tenant that texted it.

    Returns how many tenants' lists gained the number.
    """
    if content.strip().lower() not in UNSUBSCRIBE_REPLIES:
        return 0
    number = normalise("sms", address)
    if not number.is_valid:
        logger.warning("Unsubscribe reply from an unparseable number %r", address)
        return 0
    tenants = (
        CommunicationLog.objects.filter(recipient=number.value, provider=provider)
        .values_list("tenant_id", flat=True)
        .distinct()
        .order_by()
    )
    return sum(
        suppression_add(
            tenant_id=tenant_id, channel="sms", recipient=number.value, reason=Suppression.Reason.UNSUBSCRIBED
        )
        for tenant_id in tenants
    )
