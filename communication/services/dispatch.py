"""Dispatch of pending logs to providers (claim → send → record) and the pending sweeper."""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from authms.iterables import chunked
from communication.masking import redact_recipient
from communication.models import (
    CommunicationLog,
    Status,
)
from communication.services.batches import batch_complete_if_done, enqueue_dispatch
from communication.services.status import StatusUpdate, logs_apply_status
from communication.unsubscribe import unsubscribe_url
from providers.base import (
    OUTCOME_UNKNOWN,
    Outcome,
    OutgoingMessage,
    Provider,
    ProviderError,
    SendResult,
)
from providers.registry import provider_by_name

logger = logging.getLogger(__name__)

# --- Dispatch -----------------------------------------------------------------------------


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    retry: int = 0
    retry_reasons: list[str] = field(default_factory=list)


def _claim_chunk(*, batch_id: str | None, size: int) -> list[CommunicationLog]:
    """Take up to `size` pending, unclaimed logs; concurrent workers skip each other's rows."""
    with transaction.atomic():
        queryset = CommunicationLog.objects.select_for_update(skip_locked=True).filter(
            status=Status.PENDING, claimed_at__isnull=True
        )
        if batch_id:
            queryset = queryset.filter(batch_id=batch_id)
        logs = list(queryset.order_by("id")[:size])
        if logs:
            now = timezone.now()
            CommunicationLog.objects.filter(id__in=[log.id for log in logs]).update(
                claimed_at=now, attempts=F("attempts") + 1
            )
            for log in logs:
                log.claimed_at, log.attempts = now, log.attempts + 1
    return logs


def _outgoing(log: CommunicationLog) -> OutgoingMessage:
    payload = log.send_payload or {}
    return OutgoingMessage(
        log_id=log.id,
        tenant_id=log.tenant_id,
        channel=log.channel,
        recipient=log.recipient,
        subject=payload.get("subject", log.subject),
        body=payload.get("body", log.content),
        provider_template_id=payload.get("provider_template_id", ""),
        variables=payload.get("variables", {}),
        unsubscribe_url=(
            unsubscribe_url(tenant_id=log.tenant_id, channel=log.channel, recipient=log.recipient)
            if log.channel == "email"
            else ""
        ),
    )


def _send_through_provider(provider: Provider, logs: list[CommunicationLog]) -> list[SendResult]:
    provider_name = provider.name
    try:
        results = provider.send_many([_outgoing(log) for log in logs])
    except ProviderError as exc:
        log_call = logger.error if exc.permanent else logger.warning
        log_call("Provider %s failed a call of %d messages: %s", provider_name, len(logs), exc.message)
        return [exc.as_result()] * len(logs)
    except Exception as exc:  # noqa: BLE001 - a provider bug must not leave logs claimed forever
        logger.exception("Provider %s raised unexpectedly", provider_name)
        return [
            SendResult.failed(OUTCOME_UNKNOWN.format(reason=f"provider error {type(exc).__name__}"))
        ] * len(logs)
    if len(results) != len(logs):
        logger.error(
            "Provider %s answered %d results for %d messages", provider_name, len(results), len(logs)
        )
        return [
            SendResult.failed(
                OUTCOME_UNKNOWN.format(reason="the provider's answer did not match the request")
            )
        ] * len(logs)
    return results


def _record_results(logs: list[CommunicationLog], results: list[SendResult], report: DispatchReport) -> None:
    updates, released = [], []
    for log, result in zip(logs, results, strict=True):
        if result.outcome == Outcome.SENT:
            updates.append(
                StatusUpdate(
                    log.id,
                    Status.SENT,
                    provider_message_id=result.provider_message_id,
                    response=redact_recipient(result.response, log.channel, log.recipient),
                    fee=result.fee,
                )
            )
            report.sent += 1
        elif result.outcome == Outcome.RETRY and log.attempts < settings.DISPATCH_MAX_ATTEMPTS:
            released.append(log.id)
            report.retry += 1
            report.retry_reasons.append(result.error or "")
        else:
            error = result.error or "The provider refused the message."
            if result.outcome == Outcome.RETRY:
                error = f"Gave up after {log.attempts} attempts: {error}"
            updates.append(
                StatusUpdate(
                    log.id,
                    Status.FAILED,
                    error=redact_recipient(error, log.channel, log.recipient),
                    response=redact_recipient(result.response, log.channel, log.recipient),
                )
            )
            report.failed += 1
    logs_apply_status(updates)
    if released:
        CommunicationLog.objects.filter(id__in=released, status=Status.PENDING).update(claimed_at=None)


def dispatch_pending(*, batch_id: str | None = None) -> DispatchReport:
    """Send pending logs chunk by chunk until none are left or the provider needs a pause."""
    report = DispatchReport()
    while logs := _claim_chunk(batch_id=batch_id, size=settings.DISPATCH_CHUNK_SIZE):
        by_provider: dict[str, list[CommunicationLog]] = defaultdict(list)
        for log in logs:
            by_provider[log.provider].append(log)
        for provider_name, group in by_provider.items():
            try:
                provider = provider_by_name(provider_name)
            except LookupError as exc:  # the provider was removed from settings since the log was made
                _record_results(group, [SendResult.failed(str(exc))] * len(group), report)
                continue
            for part in chunked(group, provider.max_batch_size):
                _record_results(part, _send_through_provider(provider, part), report)
        if report.retry:
            break  # the provider could not be reached: let the task back off
    if batch_id:
        batch_complete_if_done(batch_id=batch_id)
    return report


# --- Sweeper ------------------------------------------------------------------------------


@dataclass
class SweepReport:
    requeued_batches: int = 0
    abandoned: int = 0
    completed_batches: int = 0


def sweep_pending(*, limit: int = 1000) -> SweepReport:
    """Re-enqueue logs nobody picked up, and fail those a worker claimed and never finished.

    A claimed log whose worker vanished may or may not have reached the provider, so it is
    failed as "outcome unknown" rather than resent (at-most-once).
    """
    now = timezone.now()
    report = SweepReport()
    abandoned = list(
        CommunicationLog.objects.filter(
            status=Status.PENDING, claimed_at__lt=now - timedelta(seconds=settings.STALE_CLAIM_SECONDS)
        ).values_list("id", "batch_id")[:limit]
    )
    error = OUTCOME_UNKNOWN.format(reason="the worker stopped while sending")
    report.abandoned = logs_apply_status(
        StatusUpdate(log_id, Status.FAILED, error=error) for log_id, _batch in abandoned
    )

    waiting = (
        CommunicationLog.objects.filter(
            status=Status.PENDING,
            claimed_at__isnull=True,
            created_at__lt=now - timedelta(seconds=settings.SWEEP_PENDING_AFTER_SECONDS),
        )
        .values_list("batch_id", flat=True)
        .distinct()
        .order_by()[:limit]
    )
    for batch_id in list(waiting):
        enqueue_dispatch(batch_id, settings.DISPATCH_CHUNK_SIZE)
        report.requeued_batches += 1

    for batch_id in {batch_id for _log, batch_id in abandoned if batch_id}:
        report.completed_batches += batch_complete_if_done(batch_id=batch_id)
    return report
