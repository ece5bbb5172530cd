"""The suppression list: who must not be sent to, and the replies that put them there."""

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils.translation import gettext

from authms.audit import staff_action_record
from authms.errors import PermissionDeniedError, ValidationError
from authms.models import User
from communication.masking import mask_recipient
from communication.models import (
    CommunicationLog,
    Event,
    Suppression,
    SuppressionLift,
)
from communication.recipients import normalise, suppression_key
from communication.services.events import event_record

logger = logging.getLogger(__name__)


def suppressed_keys(
    *, tenant_id: str, channel: str, recipients: Iterable[str], category: str = ""
) -> dict[str, str]:
    """The suppression keys (see suppression_key) of those recipients the tenant has suppressed
    for everything or for this category, each with why and since when ("bounced on
    2026-11-30", "unsubscribed from marketing on …"), for the log's error."""
    keys = {suppression_key(channel, recipient) for recipient in recipients}
    rows = Suppression.objects.filter(
        tenant_id=tenant_id, channel=channel, recipient__any=keys, category__in={"", category}
    ).values_list("recipient", "reason", "category", "created_at")
    return {  # stored in the log's error, in English like the rest of it
        key: f"{'added by staff' if reason == Suppression.Reason.MANUAL else reason}"
        f"{f' from {scope}' if scope else ''} on {created:%Y-%m-%d}"
        for key, reason, scope, created in rows
    }


def suppression_add(
    *,
    tenant_id: str,
    channel: str,
    recipient: str,
    reason: str = Suppression.Reason.MANUAL,
    detail: str = "",
    category: str = "",
) -> bool:
    """Put a recipient (normalised first) on a tenant's suppression list, for everything or
    for one category.

    Adding twice is harmless; returns True only when the entry is new.
    """
    normalised = normalise(channel, recipient)
    if not normalised.is_valid:
        raise ValidationError.for_field("recipient", normalised.error)
    with transaction.atomic():
        _suppression, created = Suppression.objects.get_or_create(
            tenant_id=tenant_id,
            channel=channel,
            recipient=suppression_key(channel, normalised.value),
            category=category,
            defaults={"reason": reason, "detail": detail},
        )
        if created:
            event_record(
                type=Event.Type.SUPPRESSION_ADDED,
                tenant_id=tenant_id,
                channel=channel,
                data={
                    "channel": channel,
                    "recipient": mask_recipient(channel, normalised.value),
                    "reason": reason,
                    "category": category or None,
                },
            )
    return created


def suppressions_lift(*, actor: User, suppressions: Iterable[Suppression], note: str) -> int:
    """Take recipients off the suppression list with a reason, keeping an audit row each.
    Staff may lift only their own tenant's entries (platform admins any)."""
    note = note.strip()
    if not note:
        raise ValidationError.for_field("note", gettext("Say why the suppression is lifted."))
    lifted = 0
    with transaction.atomic():
        for entry in suppressions:
            if not actor.is_platform_admin and entry.tenant_id != actor.tenant_id:
                raise PermissionDeniedError()
            SuppressionLift.objects.create(
                tenant_id=entry.tenant_id, channel=entry.channel, recipient=entry.recipient, was=entry.reason,
                suppressed_at=entry.created_at, lifted_by=actor, note=note,
            )  # fmt: skip
            entry.delete()
            lifted += 1
        staff_action_record(actor=actor, action=f"Lifted {lifted} suppression(s): {note}")
    return lifted


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
