"""Dispatch of pending logs to providers (claim → send → record), retries with backoff,
and the pending sweeper.

A message whose provider surely never received it (providers/http.py) is released with
`next_attempt_at` set by DISPATCH_RETRY_SCHEDULE and is claimed again only when due; after
the last step it fails, saying how long it was tried. A message whose outcome is unknown
is never resent automatically.
"""

import json
import logging
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from authms.env import parse_duration_seconds
from authms.ids import new_ulid
from authms.iterables import chunked
from authms.metrics import observe_provider_call
from authms.side_by_side import can_work_side_by_side, in_own_connection
from communication.masking import redact_recipient
from communication.models import (
    Channel,
    CommunicationLog,
    DeliveryAttempt,
    Status,
    StatusDetail,
    UnstartedCall,
)
from communication.selectors import push_device_targets
from communication.services.batches import batch_complete_if_done, enqueue_dispatch
from communication.services.devices import devices_count_failure, devices_deactivate
from communication.services.health import flush_call_stats, record_call
from communication.services.heartbeat import claim_heartbeat
from communication.services.outgoing import outgoing_message
from communication.services.reconcile import logs_hold_for_reconciliation, reconciliations_expire
from communication.services.routing import route
from communication.services.status import StatusUpdate, logs_apply_status, pushed_reports_apply_left
from providers.base import (
    OUTCOME_UNKNOWN,
    Outcome,
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
    reconciling: int = 0  # outcome unknown, held while the gateway is asked
    failed_over: int = 0  # not taken by their provider, handed to the next one of the route
    out_of_time: bool = False  # stopped between chunks with due work left: continue in a new task
    next_due_at: datetime | None = None  # the earliest retry still waiting in this batch

    @classmethod
    def merged(cls, reports: list["DispatchReport"]) -> "DispatchReport":
        """One report for the loops of one dispatch (next_due_at is read after them)."""
        total = cls()
        for report in reports:
            for name in ("sent", "failed", "retry", "reconciling", "failed_over"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.retry_reasons += report.retry_reasons
            total.out_of_time = total.out_of_time or report.out_of_time
        return total


def retry_delays() -> list[int]:
    """Seconds to wait after attempt 1, 2, …; one more attempt than delays, then give up."""
    return [
        parse_duration_seconds(step) for step in settings.DISPATCH_RETRY_SCHEDULE.split(",") if step.strip()
    ]


def max_attempts() -> int:
    return len(retry_delays()) + 1


def retry_at(attempts: int, now: datetime) -> datetime:
    """When a message that failed its `attempts`-th try is due again, with ±20 % jitter so
    that messages released together do not all come back in the same second."""
    delays = retry_delays()
    delay = delays[min(attempts, len(delays)) - 1]
    return now + timedelta(seconds=delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret


def _due(now: datetime) -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def claimable(*, batch_id: str | None, now: datetime, locked: bool = True):
    """The claim query: due, pending, unclaimed rows of a batch in order, locked, skipping
    rows other workers hold.

    Written so that only an index on (batch_id, id) can return rows in the requested order
    (`log_claimable`, the claim's exact partial index, or `log_batch`): the batch is a range
    (`batch_id BETWEEN x AND x`), not an equality, so the planner cannot reduce the ordering
    to `id` alone and walk the primary key instead. With statistics that think most rows
    are pending (after ANALYZE of a burst) it did exactly that, and read every older row of
    the table before the first pending one.
    """
    queryset = CommunicationLog.objects.filter(_due(now), status=Status.PENDING, claimed_at__isnull=True)
    if batch_id:
        queryset = queryset.filter(batch_id__gte=batch_id, batch_id__lte=batch_id)
    queryset = queryset.order_by("batch_id", "id")
    return queryset.select_for_update(skip_locked=True) if locked else queryset


@dataclass(slots=True)
class ClaimedLog:
    """What sending a claimed log and recording the answer read, as a plain row: turning
    10,000 claimed rows into model instances took a fifth of a worker's time."""

    id: str
    tenant_id: str
    channel: str
    provider: str
    recipient: str
    subject: str
    content: str
    push_data: dict | None
    send_payload: dict | None
    attempts: int
    provider_ref: str
    claimed_at: datetime


SENDING_FIELDS = [column.name for column in fields(ClaimedLog)]


@dataclass
class ClaimedCall:
    """One provider call's worth of claimed logs and the reference that call carries."""

    provider_name: str
    logs: list[ClaimedLog]
    reference: str


# A call whose logs were claimed longer ago than this (the chunk's earlier calls were slow)
# first stores its own hand-over time, which reconciliation matches the gateway's records
# against (from 10 s before to 120 s after: reconcile.MATCH_BEFORE, MATCH_AFTER).
HAND_OVER_STALE = timedelta(seconds=5)
# A later call's row outlives its chunk only if its logs were settled some other way (their
# provider removed from settings, a batch cancelled meanwhile); the sweeper drops such rows.
UNSTARTED_CALL_KEPT = timedelta(days=1)


def _claim_chunk(*, batch_id: str | None, size: int) -> list[ClaimedCall]:
    """Take up to `size` due, pending, unclaimed logs (concurrent workers skip each other's
    rows) and hand them over in the same transaction (on PostgreSQL, one UPDATE): the attempt
    is counted, and each provider call the chunk will make gets its reference stored before
    any call, so an unknown outcome can be looked up. The calls after the first are also noted
    as not started (`UnstartedCall`), so that if this worker dies before making them the
    sweeper can send their logs again. Every claimed log goes to its provider within the
    chunk, so claims count requests."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _claim_in_one_transaction(batch_id=batch_id, size=size, now=now)
    with transaction.atomic():
        rows = claimable(batch_id=batch_id, now=now).values_list(*SENDING_FIELDS)[:size]
        logs = {log.id: log for log in (ClaimedLog(*row) for row in rows)}
        calls = _plan_calls([(log.id, log.provider) for log in logs.values()], size=size)
        for _, ids, reference in calls:
            CommunicationLog.objects.filter(id__in=ids).update(
                claimed_at=now, attempts=F("attempts") + 1, provider_ref=reference
            )
            for log_id in ids:
                log = logs[log_id]
                log.claimed_at, log.attempts, log.provider_ref = now, log.attempts + 1, reference
        _note_later_calls(calls, now)
    return _as_calls(calls, logs)


def _plan_calls(rows: list[tuple[str, str]], *, size: int) -> list[tuple[str, list[str], str]]:
    """Claimed (id, provider) rows as provider calls: by provider in claim order, each call
    at most the provider's batch size, each with its own reference."""
    by_provider: dict[str, list[str]] = defaultdict(list)
    for log_id, provider_name in rows:
        by_provider[provider_name].append(log_id)
    calls = []
    for provider_name, ids in by_provider.items():
        try:
            batch_size = provider_by_name(provider_name).max_batch_size
        except LookupError:  # removed from settings since the log was made: failed in one go
            batch_size = size
        calls += [(provider_name, part, _new_reference()) for part in chunked(ids, batch_size)]
    return calls


def _note_later_calls(calls: list[tuple[str, list[str], str]], now: datetime) -> None:
    """The first call starts as soon as the claim commits; the others are noted unstarted."""
    UnstartedCall.objects.bulk_create(
        UnstartedCall(reference=reference, planned_at=now) for *_, reference in calls[1:]
    )


def _as_calls(calls: list[tuple[str, list[str], str]], logs: dict[str, ClaimedLog]) -> list[ClaimedCall]:
    return [ClaimedCall(name, [logs[log_id] for log_id in ids], reference) for name, ids, reference in calls]


def _claim_in_one_transaction(*, batch_id: str | None, size: int, now: datetime) -> list[ClaimedCall]:
    """PostgreSQL: choose and lock, then hand over, in one short transaction.

    The log table is partitioned by month, so rows come in (batch_id, id) order only by
    merging each partition's index. With statistics from before a burst (a handful pending)
    the planner would rather sort what the partitions return, and sorts the whole burst (282
    ms instead of 5.5 ms at 200,000 rows): the choice is planned with sorting off. Only the
    choice: the UPDATE's counting triggers plan badly without sorts (300 ms a statement)."""
    chosen, params = (
        claimable(batch_id=batch_id, now=now, locked=False)
        .values("id", "provider")[:size]
        .query.sql_with_params()
    )
    meta, quote = CommunicationLog._meta, connection.ops.quote_name
    returned = ", ".join(quote(meta.get_field(name).column) for name in SENDING_FIELDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"{chosen} FOR UPDATE SKIP LOCKED", params)
        calls = _plan_calls(cursor.fetchall(), size=size)
        cursor.execute("SET LOCAL enable_sort = on")
        if not calls:
            return []
        references = {log_id: reference for _, ids, reference in calls for log_id in ids}
        sql = (
            f"UPDATE {quote(meta.db_table)} SET claimed_at = %s, attempts = attempts + 1, "  # noqa: S608 - quoted names; values are parameters
            f"provider_ref = %s::jsonb ->> id WHERE id = ANY(%s) RETURNING {returned}"
        )
        cursor.execute(sql, [now, json.dumps(references), list(references)])
        logs = {log.id: log for log in (_claimed_log(row) for row in cursor.fetchall())}
        _note_later_calls(calls, now)
    return _as_calls(calls, logs)


_JSON_FIELDS = [SENDING_FIELDS.index("push_data"), SENDING_FIELDS.index("send_payload")]


def _claimed_log(row: tuple) -> ClaimedLog:
    """A row of the claim's RETURNING: Django has psycopg hand JSON columns over as text."""
    values = list(row)
    for index in _JSON_FIELDS:
        if values[index] is not None:
            values[index] = json.loads(values[index])
    return ClaimedLog(*values)


def _new_reference() -> str:
    return f"r{new_ulid()}"


def _hand_over_now(logs: list[ClaimedLog]) -> None:
    """Store a later call's own hand-over time when its claim is no longer recent."""
    now = timezone.now()
    CommunicationLog.objects.filter(id__in=[log.id for log in logs]).update(claimed_at=now)
    for log in logs:
        log.claimed_at = now


def with_database_retry(write, *, what: str):
    """Run a database write, retrying while the database is unreachable (a restart, a
    failover): the provider's answers are already in memory and must not be lost."""
    delays = settings.DISPATCH_RECORD_RETRY_DELAYS
    for delay in [*delays, None]:
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            if delay is None:
                raise
            logger.warning("Database unavailable while %s (%s); retrying in %.1f s.", what, exc, delay)
            if not connection.in_atomic_block:  # let Django reconnect on the next query
                connection.close_if_unusable_or_obsolete()
            time.sleep(delay)
    raise AssertionError("unreachable")


def _send_through_provider(provider: Provider, logs: list[ClaimedLog], reference: str) -> list[SendResult]:
    started = time.monotonic()
    results = _call_provider(provider, logs, reference)
    seconds = time.monotonic() - started
    observe_provider_call(provider.name, logs[0].channel, [result.outcome for result in results], seconds)
    record_call(provider.name, results, seconds)
    return results


def _call_provider(provider: Provider, logs: list[ClaimedLog], reference: str) -> list[SendResult]:
    provider_name = provider.name
    # Our own read, before the call: a database hiccup here is not a provider outcome (nothing
    # has left yet), so it is retried like the dispatcher's writes, outside the provider's try.
    push_devices = [log.recipient for log in logs if log.channel == Channel.PUSH]
    targets = with_database_retry(
        partial(push_device_targets, device_ids=push_devices), what="reading push targets"
    )
    try:
        results = provider.send_many(
            [outgoing_message(log, reference, targets.get(log.recipient)) for log in logs]
        )
    except ProviderError as exc:
        log_call = logger.error if exc.permanent else logger.warning
        log_call("Provider %s failed a call of %d messages: %s", provider_name, len(logs), exc.message)
        return [exc.as_result()] * len(logs)
    except Exception as exc:  # noqa: BLE001 - a provider bug must not leave logs claimed forever
        logger.exception("Provider %s raised unexpectedly", provider_name)
        return [SendResult.unknown(f"provider error {type(exc).__name__}")] * len(logs)
    if len(results) != len(logs):
        logger.error(
            "Provider %s answered %d results for %d messages", provider_name, len(results), len(logs)
        )
        return [SendResult.unknown("the provider's answer did not match the request")] * len(logs)
    return results


def _failed(log: ClaimedLog, result: SendResult, error: str, detail: str) -> StatusUpdate:
    return StatusUpdate(
        log.id,
        Status.FAILED,
        error=redact_recipient(error, log.channel, log.recipient),
        response=redact_recipient(result.response, log.channel, log.recipient),
        status_detail=detail,
    )


def _record_results(
    provider: Provider | None, logs: list[ClaimedLog], results: list[SendResult], report: DispatchReport
) -> None:
    now = timezone.now()
    attempts_allowed = max_attempts()
    # Messages going back to the queue, by (the attempt after which they wait, or None: due
    # now; the provider that gets them). One jittered wait per group, one UPDATE per group.
    updates, requeued, held, path = [], defaultdict(list), [], []
    gone: dict[str, list[str]] = defaultdict(list)  # why → push devices the push service says are gone
    # Push devices whose service failed transiently or did not answer: counted on the device.
    troubled = [
        log.recipient
        for log, result in zip(logs, results, strict=True)
        if log.channel == Channel.PUSH and result.outcome in (Outcome.RETRY, Outcome.UNKNOWN)
    ]
    for log, result in zip(logs, results, strict=True):
        not_taken = result.outcome == Outcome.RETRY or (
            result.outcome == Outcome.FAILED and result.provider_fault
        )
        codes = (log.send_payload or {}).get("provider_codes") or {}
        next_provider = (
            route(log.channel, codes, tenant_id=log.tenant_id, after=log.provider) if not_taken else None
        )
        if next_provider is not None:
            # Provably not accepted here: the next provider of the route tries it now.
            requeued[(None, next_provider.name, None)].append(log.id)
            path.append(DeliveryAttempt(log_id=log.id, provider=log.provider, at=now, error=result.error or "",
                                        next_provider=next_provider.name))  # fmt: skip
            report.failed_over += 1
        elif result.outcome == Outcome.SENT:
            updates.append(
                StatusUpdate(
                    log.id,
                    Status.SENT,
                    provider_message_id=result.provider_message_id,
                    response=redact_recipient(result.response, log.channel, log.recipient),
                    fee=result.fee,
                    status_detail="",
                )
            )
            report.sent += 1
        elif result.outcome == Outcome.RETRY and log.attempts < attempts_allowed:
            # The next try starts again from the top of the route (the primary may be back).
            first = route(log.channel, codes, tenant_id=log.tenant_id)
            requeued[(log.attempts, first.name if first else log.provider, result.retry_after)].append(log.id)
            path.append(
                DeliveryAttempt(log_id=log.id, provider=log.provider, at=now, error=result.error or "")
            )
            report.retry += 1
            report.retry_reasons.append(result.error or "")
        elif result.outcome == Outcome.RETRY:
            waited = sum(retry_delays()[: log.attempts - 1]) // 60
            error = f"Gave up after {log.attempts} attempts over about {waited} minutes: {result.error}"
            updates.append(_failed(log, result, error, StatusDetail.GAVE_UP))
            report.failed += 1
        elif result.outcome == Outcome.UNKNOWN and provider is not None and provider.can_reconcile:
            held.append(log.id)
            report.reconciling += 1
        elif result.outcome == Outcome.UNKNOWN:
            updates.append(_failed(log, result, result.error, StatusDetail.UNKNOWN))
            report.failed += 1
        else:
            updates.append(
                _failed(
                    log, result, result.error or "The provider refused the message.", StatusDetail.REJECTED
                )
            )
            report.failed += 1
            if result.target_gone and log.channel == Channel.PUSH:
                gone[result.error or "Gone at the push service."].append(log.recipient)
    unknown_reason = next((r.error for r in results if r.outcome == Outcome.UNKNOWN), "")

    def write():
        logs_apply_status(updates)
        for (attempts, provider_name, wait), ids in requeued.items():
            due = None if attempts is None else retry_at(attempts, now)
            if wait:  # the provider's Retry-After, when later than our schedule
                due = max(due or now, now + timedelta(seconds=wait))
            CommunicationLog.objects.filter(id__in=ids, status=Status.PENDING).update(
                claimed_at=None,
                next_attempt_at=due,
                status_detail=StatusDetail.RETRYING,
                provider=provider_name,
            )
        DeliveryAttempt.objects.bulk_create(path)
        for reason, device_ids in gone.items():
            devices_deactivate(device_ids=device_ids, reason=reason)
        if troubled:
            devices_count_failure(device_ids=troubled)
        if held:
            logs_hold_for_reconciliation(log_ids=held, reason=unknown_reason)

    with_database_retry(write, what="recording provider answers")


# Later calls are taken off the unstarted list a group at a time, the group's calls holding at
# least this many messages together. A provider taking one message a call then pays one
# statement per ten messages (one a message cost its drain up to a tenth; grouped, within
# 2 %, measured alternated), and a worker that dies leaves at most the rest of one group to
# reconciliation instead of sending it again.
START_AHEAD_MESSAGES = 10


def _take_unstarted(references: list[str]) -> set[str]:
    """Delete these calls' `UnstartedCall` rows; returns the references whose row was still
    there. Whoever takes a row owns its call: the worker about to make it, or the sweeper
    giving a dead worker's logs back to the queue. One statement (the ORM's delete wraps its
    DELETE in a transaction and does not say which rows it deleted)."""
    table = connection.ops.quote_name(UnstartedCall._meta.db_table)
    placeholders = ", ".join(["%s"] * len(references))
    sql = f"DELETE FROM {table} WHERE reference IN ({placeholders}) RETURNING reference"  # noqa: S608 - a quoted table name; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, references)
        return {reference for (reference,) in cursor.fetchall()}


def _start_later_calls(calls: list[ClaimedCall]) -> set[str]:
    """Take these calls off the unstarted list before making them; returns the references
    taken. A call not taken was the sweeper's (this worker's heartbeat had stopped), which
    gave its logs back to the queue."""
    references = [call.reference for call in calls]
    return with_database_retry(partial(_take_unstarted, references), what="starting provider calls")


def _group_from(calls: list[ClaimedCall], position: int) -> list[ClaimedCall]:
    """The calls from `position` on that hold START_AHEAD_MESSAGES together (at least one)."""
    group, messages = [], 0
    for call in calls[position:]:
        if messages >= START_AHEAD_MESSAGES:
            break
        group.append(call)
        messages += len(call.logs)
    return group


def _send_chunk(calls: list[ClaimedCall], report: DispatchReport) -> None:
    started = {calls[0].reference} if calls else set()  # the first call: its claim just committed
    for position, call in enumerate(calls):
        if call.reference not in started:
            started = _start_later_calls(_group_from(calls, position))
            if call.reference not in started:
                logger.warning(
                    "Call %s was given back to the queue while this worker held it.", call.reference
                )
                continue
        try:
            provider = provider_by_name(call.provider_name)
        except LookupError as exc:  # the provider was removed from settings since the log was made
            failed = SendResult.failed(str(exc), provider_fault=True)
            _record_results(None, call.logs, [failed] * len(call.logs), report)
            continue
        if timezone.now() - call.logs[0].claimed_at > HAND_OVER_STALE:
            _hand_over_now(call.logs)
        _record_results(
            provider, call.logs, _send_through_provider(provider, call.logs, call.reference), report
        )


def dispatch_pending(
    *, batch_id: str | None = None, time_budget: float | None = None, heartbeat: bool = False
) -> DispatchReport:
    """Send due pending logs chunk by chunk until none are left, the provider needs a pause,
    or `time_budget` seconds have passed (checked between chunks, so a worker asked to stop
    never waits for more than one chunk). With `heartbeat` (real workers), the claims are
    renewed while the chunk is in hand (services/heartbeat.py).

    DISPATCH_THREADS loops claim and send chunks side by side, each with its own database
    connection, so one chunk's provider call overlaps the others' database writes; claims
    skip each other's rows as concurrent workers' do. One loop on SQLite (one writer at a
    time) and inside a transaction (a test, a caller's atomic block), whose rows other
    connections could not see."""
    started = time.monotonic()
    stop = threading.Event()

    def loop() -> DispatchReport:
        return _dispatch_loop(batch_id=batch_id, time_budget=time_budget, heartbeat=heartbeat,
                              started=started, stop=stop)  # fmt: skip

    threads = settings.DISPATCH_THREADS if can_work_side_by_side() else 1
    try:
        if threads <= 1:
            report = loop()
        else:
            with ThreadPoolExecutor(threads, thread_name_prefix="dispatch") as pool:
                report = DispatchReport.merged(
                    list(pool.map(lambda _: in_own_connection(loop), range(threads)))
                )
    finally:
        flush_call_stats()
    if batch_id:
        batch_complete_if_done(batch_id=batch_id)
        report.next_due_at = (
            CommunicationLog.objects.filter(
                batch_id=batch_id, status=Status.PENDING, next_attempt_at__isnull=False
            )
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
    return report


def _dispatch_loop(
    *, batch_id: str | None, time_budget: float | None, heartbeat: bool, started: float, stop: threading.Event
) -> DispatchReport:
    report = DispatchReport()
    while not stop.is_set():
        calls = _claim_chunk(batch_id=batch_id, size=settings.DISPATCH_CHUNK_SIZE)
        if not calls:
            break
        claimed = [log.id for call in calls for log in call.logs]
        with claim_heartbeat.beating(claimed) if heartbeat else nullcontext():
            _send_chunk(calls, report)
        if report.retry:
            stop.set()  # the provider could not be reached: the rest waits for its own turn
        elif time_budget is not None and time.monotonic() - started > time_budget:
            report.out_of_time = True
            stop.set()
    return report


# --- Sweeper ------------------------------------------------------------------------------


@dataclass
class SweepReport:
    requeued_batches: int = 0
    released: int = 0  # claimed by a worker that died before their call: back in the queue
    abandoned: int = 0
    held: int = 0  # of the abandoned, those held for reconciliation (the gateway can be asked)
    looked_up: int = 0  # held messages settled by asking the gateway about each (Aliyun)
    expired: int = 0  # reconciliations past their deadline, failed as unknown
    completed_batches: int = 0
    pushed_reports: int = 0  # logs changed by kept pushed receipts whose task was lost


def sweep_pending(*, limit: int = 1000) -> SweepReport:
    """Re-enqueue due logs nobody picked up, settle claims whose worker died, and end
    reconciliations past their deadline; apply pushed receipts whose task was lost.

    A claimed log whose worker vanished may or may not have reached the provider: it is
    reconciled where the provider can be asked (it carries the reference of its call),
    otherwise failed as "outcome unknown"; never resent blindly (at-most-once). Only the logs
    of a call the worker provably never started go back to the queue.
    """
    now = timezone.now()
    report = SweepReport()
    stale_before = now - timedelta(seconds=settings.STALE_CLAIM_SECONDS)
    abandoned = list(
        CommunicationLog.objects.filter(
            status=Status.PENDING, claimed_at__lt=stale_before, updated_at__lt=stale_before
        )
        .exclude(status_detail=StatusDetail.RECONCILING)
        .values_list("id", "batch_id", "provider", "provider_ref")[:limit]
    )
    released, report.released, released_batches = _release_unstarted_calls(
        {reference for *_, reference in abandoned if reference}
    )
    reason = OUTCOME_UNKNOWN.format(reason="the worker stopped while sending")
    askable, unknown = [], []
    for log_id, _batch, provider_name, reference in abandoned:
        if reference not in released:
            (askable if reference and _can_reconcile(provider_name) else unknown).append(log_id)
    report.abandoned = len(askable) + logs_apply_status(
        StatusUpdate(log_id, Status.FAILED, error=reason, status_detail=StatusDetail.UNKNOWN)
        for log_id in unknown
    )
    if askable:
        report.held = logs_hold_for_reconciliation(log_ids=askable, reason=reason)
    report.expired = reconciliations_expire()

    waiting = (
        CommunicationLog.objects.filter(
            _due(now),
            status=Status.PENDING,
            claimed_at__isnull=True,
            created_at__lt=now - timedelta(seconds=settings.SWEEP_PENDING_AFTER_SECONDS),
        )
        .values_list("batch_id", flat=True)
        .distinct()
        .order_by()[:limit]
    )
    for batch_id in released_batches.union(waiting):
        enqueue_dispatch(batch_id, settings.DISPATCH_CHUNK_SIZE)
        report.requeued_batches += 1
    UnstartedCall.objects.filter(planned_at__lt=now - UNSTARTED_CALL_KEPT).delete()

    for batch_id in {batch_id for _log, batch_id, _p, _r in abandoned if batch_id}:
        report.completed_batches += batch_complete_if_done(batch_id=batch_id)
    report.pushed_reports = pushed_reports_apply_left()
    return report


def _release_unstarted_calls(references: set[str]) -> tuple[set[str], int, set[str | None]]:
    """Give back to the queue the logs of abandoned calls their worker never started (their
    `UnstartedCall` row is still there): nothing of theirs left, so sending them again cannot
    send anything twice. The rows are taken in the same transaction, so a worker that was only
    slow finds its call gone and skips it. Every log of such a call is released, also those
    past this sweep's limit. Returns the calls released, how many logs, and their batches."""
    if not references:
        return set(), 0, set()
    with transaction.atomic():
        released = _take_unstarted(list(references))
        if not released:
            return set(), 0, set()
        # Claimed pending rows: the small partial index log_claimed has them all.
        logs = CommunicationLog.objects.filter(
            status=Status.PENDING, claimed_at__isnull=False, provider_ref__in=released
        )
        batches = set(logs.order_by().values_list("batch_id", flat=True))
        count = logs.update(claimed_at=None, provider_ref=None, attempts=F("attempts") - 1)
    return released, count, batches


def _can_reconcile(provider_name: str) -> bool:
    try:
        return provider_by_name(provider_name).can_reconcile
    except LookupError:
        return False
