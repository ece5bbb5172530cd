"""Settling messages whose outcome is unknown, by asking the gateway what it did.

A message may have gone out when the provider call timed out after sending, the connection
dropped, or the worker died mid-call. Where the provider keeps records we can search
(`Provider.can_reconcile`), such a message is not failed: it stays `pending` with
`status_detail=reconciling`, held (its claim is kept, so no worker sends it), until

- a pushed receipt names it by the reference its request carried (SUBMAIL's `tag`) and its
  address: it was sent, with that message id (this settles messages still in flight too, so
  a worker killed after SUBMAIL's `request` push leaves nothing to reconcile);
- a page of the gateway's records (SUBMAIL's `sms/log`, read by the status sync) lists a
  message to the same recipient with the same text, sent around our hand-over, whose id no
  other log has: it was sent;
- a completed pass over the gateway's records for a window that covers the hand-over and
  reaches RECONCILE_SETTLE (10 minutes) past it finds nothing: it was not accepted, and it is
  queued again (conservative: a gateway slow to list what it accepted must not cause a
  second send);
- RECONCILE_DEADLINE passes without an answer: it fails as "Outcome unknown", saying so.

Staff cannot resend a reconciling message (only failed ones), so nobody sends it twice
while the gateway may still answer.
"""

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Min
from django.utils import timezone

from communication.models import CommunicationLog, Status, StatusDetail
from communication.services.outgoing import outgoing_message
from communication.services.status import StatusUpdate, logs_apply_status
from providers.base import OUTCOME_UNKNOWN, Provider, ProviderError, SentRecord
from providers.registry import provider_by_name, providers_in_use

logger = logging.getLogger(__name__)

# How far a gateway's "sent at" may lie from our hand-over and still be the same message.
MATCH_BEFORE = timedelta(seconds=10)
MATCH_AFTER = timedelta(seconds=120)


def logs_hold_for_reconciliation(*, log_ids: Sequence[str], reason: str) -> int:
    """Keep messages of unknown outcome pending and held while the gateway is asked.

    The claim stays (no worker takes them) and keeps its time, the hand-over, which the
    gateway's records are matched against; `updated_at` says since when they are held,
    `next_attempt_at` is the deadline."""
    now = timezone.now()
    return CommunicationLog.objects.filter(id__in=log_ids, status=Status.PENDING).update(
        status_detail=StatusDetail.RECONCILING,
        error=reason,
        next_attempt_at=now + timedelta(seconds=settings.RECONCILE_DEADLINE_SECONDS),
        updated_at=now,
    )


def _held():
    return CommunicationLog.objects.filter(status=Status.PENDING, status_detail=StatusDetail.RECONCILING)


def _reconciling(provider: str):
    return _held().filter(provider=provider)


def _as_sent(log: CommunicationLog, provider_message_id: str, at: datetime | None) -> StatusUpdate:
    return StatusUpdate(
        log.id,
        Status.SENT,
        at=at,
        provider_message_id=provider_message_id,
        error="",
        status_detail="",
    )


def reconciling_hand_overs(*, provider: str, held_after: datetime | None) -> tuple[datetime, datetime] | None:
    """The first and last hand-over of messages held for reconciliation after `held_after`."""
    held = _reconciling(provider)
    if held_after is not None:
        held = held.filter(updated_at__gt=held_after)
    span = held.aggregate(first=Min("claimed_at"), last=Max("claimed_at"))
    return None if span["first"] is None else (span["first"], span["last"])


def reconcile_records(*, provider: str, records: Iterable[SentRecord]) -> int:
    """Match the gateway's records of accepted messages to our reconciling logs; returns how
    many logs were settled as sent. Run it before applying the same page's reports."""
    records = [record for record in records if record.sent_at is not None]
    candidates = list(_reconciling(provider).filter(recipient__in={r.recipient for r in records}))
    if not candidates:
        return 0
    known = set(
        CommunicationLog.objects.filter(
            provider_message_id__in=[record.provider_message_id for record in records]
        ).values_list("provider_message_id", flat=True)
    )
    sender = provider_by_name(provider)
    updates, taken = [], set()
    for log in candidates:
        handed_at = log.claimed_at
        message = outgoing_message(log)
        text, template = sender.text_as_sent(message.body), message.provider_template_id
        for record in records:
            if record.provider_message_id in known or record.provider_message_id in taken:
                continue
            same_message = (template and record.template == template) or (
                not template and text in record.texts
            )
            if (
                record.recipient == log.recipient
                and same_message
                and handed_at - MATCH_BEFORE <= record.sent_at <= handed_at + MATCH_AFTER
            ):
                updates.append(_as_sent(log, record.provider_message_id, record.sent_at))
                taken.add(record.provider_message_id)
                break
    return logs_apply_status(updates)


def reconcile_push(*, provider: str, reference: str, recipient: str, provider_message_id: str) -> int:
    """A pushed receipt names a message by the reference its request carried: settle it as
    sent, whether it is held for reconciliation or still in flight (the worker waiting for an
    answer that may never come: its own later record is then a no-op, sent never goes back)."""
    if not (reference and recipient and provider_message_id):
        return 0
    if CommunicationLog.objects.filter(provider_message_id=provider_message_id).exists():
        return 0  # already known: the report applies to it directly
    log = CommunicationLog.objects.filter(
        provider=provider, status=Status.PENDING, provider_ref=reference, recipient=recipient
    ).first()
    if log is None:
        return 0
    return logs_apply_status([_as_sent(log, provider_message_id, None)])


# A held message is asked about again at most this often (the gateway may list it late).
LOOKUP_EVERY = timedelta(seconds=20)


def reconcile_by_lookup(*, limit: int = 200) -> int:
    """Ask gateways searchable one message at a time (`Provider.look_up`: Aliyun's
    QuerySendDetails by number, day and our reference) about their held messages: found → sent;
    still not listed RECONCILE_SETTLE after the hand-over → never accepted, queued again.
    Returns how many were settled either way."""
    searchable = [name for name in providers_in_use() if _looks_up(name)]
    if not searchable:
        return 0  # SUBMAIL is asked through pages of sms/log instead (status sync)
    now = timezone.now()
    held = list(
        _held()
        .filter(provider__in=searchable, updated_at__lte=now - LOOKUP_EVERY)
        .order_by("updated_at")[:limit]
    )
    sent, never, asked = [], [], []
    for log in held:
        try:
            record = provider_by_name(log.provider).look_up(
                recipient=log.recipient, reference=log.provider_ref, handed_at=log.claimed_at
            )
        except ProviderError as exc:
            logger.warning("Could not ask %s about %s: %s", log.provider, log.id, exc.message)
            continue
        if record is not None:
            sent.append(_as_sent(log, record.provider_message_id, record.sent_at))
        elif log.claimed_at <= now - timedelta(seconds=settings.RECONCILE_SETTLE_SECONDS):
            never.append(log.id)
        else:
            asked.append(log.id)
    settled = logs_apply_status(sent) + _requeue(_reconciling_ids(never))
    _reconciling_ids(asked).update(updated_at=now)
    return settled


def _looks_up(name: str) -> bool:
    """Whether the provider implements `look_up` (searchable one message at a time)."""
    return type(provider_by_name(name)).look_up is not Provider.look_up


def _reconciling_ids(log_ids: Sequence[str]):
    return _held().filter(id__in=log_ids)


def _requeue(held) -> int:
    """Held messages the gateway never accepted go back to the queue (due now)."""
    return held.update(
        status_detail=StatusDetail.RETRYING, claimed_at=None, next_attempt_at=timezone.now(), error=None
    )


def reconcile_window_complete(*, provider: str, window_start: datetime, window_end: datetime) -> int:
    """Every page of the gateway's records for [start, end] was read, each at or after
    `window_end` (the window ends when its first page is asked for). A log held for
    reconciliation before then, handed over well inside the window and still unmatched was
    never accepted: queue it again."""
    requeued = _requeue(
        _reconciling(provider).filter(
            updated_at__lte=window_end,
            claimed_at__gte=window_start + MATCH_BEFORE,
            claimed_at__lte=window_end - timedelta(seconds=settings.RECONCILE_SETTLE_SECONDS),
        )
    )
    if requeued:
        logger.info(
            "%d messages of unknown outcome were never accepted by %s; queued again", requeued, provider
        )
    return requeued


def reconciliations_expire() -> int:
    """Reconciling logs past RECONCILE_DEADLINE fail as unknown, saying why."""
    expired = list(_held().filter(next_attempt_at__lte=timezone.now()).values_list("id", flat=True)[:1000])
    reason = "the gateway's records did not settle it before the reconciliation deadline"
    return logs_apply_status(
        StatusUpdate(
            log_id,
            Status.FAILED,
            error=OUTCOME_UNKNOWN.format(reason=reason),
            status_detail=StatusDetail.UNKNOWN,
        )
        for log_id in expired
    )
