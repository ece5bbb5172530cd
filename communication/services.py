"""Writes of the communication pipeline.

Owns: bulk send (validation, rendering, recipients, one transaction), dispatch of pending
logs to providers (claim → send → record), the one forward-only status function every
status change goes through, provider status reports, the pending sweeper, batch completion
and the suppression list.
"""

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Value
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from kombu.exceptions import OperationalError as BrokerError

from authms.errors import NotFoundError, PermissionDeniedError, ValidationError
from authms.ids import new_ids
from authms.iterables import chunked
from authms.models import User
from communication.masking import redact_recipient
from communication.models import (
    RESPONSE_MAX_BYTES,
    Batch,
    CommunicationLog,
    ReceiptToken,
    Status,
    Suppression,
    statuses_that_may_become,
)
from communication.recipients import normalise, normalise_all, suppression_key
from communication.selectors import batch_status_counts
from communication.unsubscribe import unsubscribe_url
from notifications.services import notify
from providers.base import (
    OUTCOME_UNKNOWN,
    Outcome,
    OutgoingMessage,
    Provider,
    ProviderError,
    SendResult,
    StatusReport,
)
from providers.registry import provider_by_name, provider_for_channel
from templates.rendering import render
from templates.selectors import template_get_active

logger = logging.getLogger(__name__)

UPDATE_CHUNK = 1000


# --- Status changes -----------------------------------------------------------------------


def truncate_response(raw) -> str | None:
    """Provider answers are kept for diagnosis, at most 2 KB of them."""
    if raw is None:
        return None
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    encoded = text.encode()
    if len(encoded) <= RESPONSE_MAX_BYTES:
        return text
    return encoded[: RESPONSE_MAX_BYTES - 3].decode(errors="ignore") + "…"


@dataclass(frozen=True)
class StatusUpdate:
    """A requested status change of one log, found by `key` (log id or provider message id)."""

    key: str
    status: str
    at: datetime | None = None
    provider_message_id: str | None = None
    error: str | None = None
    response: str | None = None
    fee: int | None = None


_TIMESTAMP_FIELD = {Status.SENT: "sent_at", Status.DELIVERED: "delivered_at"}


def _chunk_columns(chunk: list[StatusUpdate], status: str, now: datetime) -> dict[str, list]:
    """Per-row values of the optional columns, None where a row keeps its current value."""
    columns: dict[str, list] = {}
    if status in _TIMESTAMP_FIELD:
        columns[_TIMESTAMP_FIELD[status]] = [update.at or now for update in chunk]
    for name in ("provider_message_id", "error", "fee"):
        values = [getattr(update, name) for update in chunk]
        if any(value is not None for value in values):
            columns[name] = values
    responses = [truncate_response(update.response) for update in chunk]
    if any(response is not None for response in responses):
        columns["response"] = responses
    return columns


def _update_with_arrays(keys, columns, *, status, allowed_from, match_field, now) -> int:
    """PostgreSQL: one UPDATE joined to unnest()ed arrays, a handful of parameters."""
    meta, quote = CommunicationLog._meta, connection.ops.quote_name
    fields = {name: meta.get_field(name) for name in columns}
    names = list(columns)
    assignments = "".join(
        f", {quote(fields[n].column)} = COALESCE(v.{quote(n)}, l.{quote(fields[n].column)})" for n in names
    )
    arrays = "".join(f", %s::{fields[n].cast_db_type(connection)}[]" for n in names)
    aliases = "".join(f", {quote(n)}" for n in names)
    sql = (
        f"UPDATE {quote(meta.db_table)} AS l SET status = %s, updated_at = %s, send_payload = NULL{assignments} "  # noqa: S608 - quoted identifiers, values as parameters
        f"FROM unnest(%s::text[]{arrays}) AS v(key{aliases}) "
        f"WHERE l.{quote(meta.get_field(match_field).column)} = v.key AND l.status = ANY(%s)"
    )
    params = [status, now, keys]
    for name in names:
        params.append(
            [
                None if v is None else fields[name].get_db_prep_value(v, connection, prepared=False)
                for v in columns[name]
            ]
        )
    params.append(list(allowed_from))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _update_with_case(keys, columns, *, status, allowed_from, match_field, now) -> int:
    """Any database: an ORM UPDATE with one CASE per column whose values differ by row."""
    values = {}
    for name, column in columns.items():
        given = {key: value for key, value in zip(keys, column, strict=True) if value is not None}
        values[name] = _column_value(name, match_field, given, len(keys))
    return CommunicationLog.objects.filter(**{f"{match_field}__in": keys}, status__in=allowed_from).update(
        status=status, updated_at=now, send_payload=None, **values
    )


def _column_value(field_name: str, match_field: str, values: dict[str, object], rows: int):
    """One value when every row gets the same one, else a CASE that keeps the current
    value where none is given. The CASE is one parameterised SQL fragment: resolving a
    thousand ORM When() objects cost five times the UPDATE itself."""
    distinct = set(values.values())
    model_field = CommunicationLog._meta.get_field(field_name)
    if len(values) == rows and len(distinct) == 1:
        return Value(distinct.pop(), output_field=model_field)
    quote = connection.ops.quote_name
    column = quote(model_field.column)
    key_column = quote(CommunicationLog._meta.get_field(match_field).column)
    sql = f"CASE {key_column} {' '.join(['WHEN %s THEN %s'] * len(values))} ELSE {column} END"
    params = []
    for key, value in values.items():
        params += [key, model_field.get_db_prep_value(value, connection, prepared=False)]
    return RawSQL(sql, params, output_field=model_field)  # noqa: S611 - quoted identifiers, values as parameters


def _executor():
    return _update_with_arrays if connection.vendor == "postgresql" else _update_with_case


def logs_apply_status(updates: Iterable[StatusUpdate], *, match_field: str = "id") -> int:
    """The one way a log's status changes; returns how many logs changed.

    Forward-only by construction: each UPDATE touches only rows whose current status may
    become the new one (pending → sent → delivered | failed), so a late or duplicated
    report is a no-op. One UPDATE per target status and chunk of 1,000, not one per row;
    on PostgreSQL the per-row values travel as arrays (`_update_with_arrays`).
    """
    by_status: dict[str, list[StatusUpdate]] = defaultdict(list)
    for update in updates:
        by_status[update.status].append(update)
    execute = _executor()
    now = timezone.now()
    changed = 0
    for status, group in by_status.items():
        for chunk in chunked(group, UPDATE_CHUNK):
            changed += execute(
                [update.key for update in chunk],
                _chunk_columns(chunk, status, now),
                status=status,
                allowed_from=statuses_that_may_become(status),
                match_field=match_field,
                now=now,
            )
    return changed


# --- Bulk send ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkResult:
    batch: Batch
    logs: list[CommunicationLog]


def suppressed_keys(*, tenant_id: str, channel: str, recipients: Iterable[str]) -> set[str]:
    """The suppression keys (see suppression_key) of those recipients the tenant has suppressed."""
    keys = {suppression_key(channel, recipient) for recipient in recipients}
    return set(
        Suppression.objects.filter(tenant_id=tenant_id, channel=channel, recipient__in=keys).values_list(
            "recipient", flat=True
        )
    )


def _resolve_owner(*, actor: User, user_id: str | None) -> User:
    if not user_id or user_id == actor.id:
        return actor
    if not actor.is_tenant_admin:
        raise PermissionDeniedError(_("Only tenant admins may send on behalf of another user."))
    owner = User.objects.filter(id=user_id, tenant_id=actor.tenant_id, is_active=True).first()
    if owner is None:
        raise NotFoundError(_("No active user %(id)r in your tenant.") % {"id": user_id})
    return owner


def _check_recipient_count(recipients: Sequence[str]):
    limit = settings.BULK_MAX_RECIPIENTS
    if len(recipients) > limit:
        raise ValidationError.for_field(
            "recipients",
            _("At most %(limit)s recipients per request; got %(count)s.")
            % {"limit": f"{limit:,}", "count": f"{len(recipients):,}"},
        )


def _check_length(channel: str, provider: Provider, text: str) -> None:
    """Count what the recipient will get (an SMS signature included) against our limit and the provider's."""
    limit = settings.SMS_MAX_LENGTH if channel == "sms" else settings.EMAIL_MAX_LENGTH
    if provider.max_text_length is not None:
        limit = min(limit, provider.max_text_length)
    length = len(provider.text_as_sent(text))
    if length > limit:
        raise ValidationError.for_field(
            "content",
            _("The %(channel)s text is %(length)s characters; the limit is %(limit)s.")
            % {"channel": channel, "length": f"{length:,}", "limit": f"{limit:,}"},
        )


def bulk_send(
    *,
    actor: User,
    channel: str,
    recipients: Sequence[str],
    content: str | None = None,
    subject: str | None = None,
    template: str | None = None,
    variables: dict[str, str] | None = None,
    user_id: str | None = None,
) -> BulkResult:
    """Create one pending log per distinct recipient and dispatch them after commit.

    Invalid and suppressed recipients do not fail the request: their logs are created
    as `failed` with the reason. Must run inside a transaction (the API's idempotency
    wrapper owns it), so the logs and the idempotency record commit together.
    """
    _check_recipient_count(recipients)
    variables = variables or {}
    owner = _resolve_owner(actor=actor, user_id=user_id)
    tmpl = (
        template_get_active(tenant_id=actor.tenant_id, code=template, channel=channel) if template else None
    )
    body = tmpl.body if tmpl else content
    if not body:
        raise ValidationError.for_field("content", _("content is required unless a template is given."))
    subject_text = subject or (tmpl.subject if tmpl else "")
    if channel == "email" and not subject_text:
        raise ValidationError.for_field(
            "subject", _("subject is required for email (the template has none).")
        )
    rendered = render(
        body=body, subject=subject_text, variables=variables, sensitive=bool(tmpl and tmpl.sensitive)
    )
    if "\r" in rendered.outbound_subject or "\n" in rendered.outbound_subject:
        raise ValidationError.for_field(
            "subject", _("The subject must be one line: it contains a line break (CR or LF).")
        )
    provider = provider_for_channel(channel)
    _check_length(channel, provider, rendered.outbound_content)

    normalised = normalise_all(channel, list(recipients))
    suppressed = suppressed_keys(
        tenant_id=actor.tenant_id, channel=channel, recipients=[r.value for r in normalised if r.is_valid]
    )
    total_chars = len(rendered.outbound_content) * len(normalised)
    if total_chars > settings.BULK_MAX_TOTAL_CHARS:
        raise ValidationError.for_field(
            "recipients",
            _(
                "This request would store %(total)s characters of text; the limit is %(limit)s. Send it in smaller batches."
            )
            % {"total": f"{total_chars:,}", "limit": f"{settings.BULK_MAX_TOTAL_CHARS:,}"},
        )
    payload = {}
    if rendered.outbound_content != rendered.content:
        payload["body"] = rendered.outbound_content
    if rendered.outbound_subject != rendered.subject:
        payload["subject"] = rendered.outbound_subject
    if tmpl and tmpl.provider_template_id:
        payload.update(provider_template_id=tmpl.provider_template_id, variables=variables)

    now = timezone.now()
    batch = Batch(
        tenant_id=actor.tenant_id,
        sender=actor,
        user=owner,
        channel=channel,
        total=len(normalised),
        created_at=now,
    )
    logs = []
    for log_id, recipient in zip(new_ids("log", len(normalised)), normalised, strict=True):
        error = recipient.error or (
            f"Recipient is on this tenant's {channel} suppression list."
            if suppression_key(channel, recipient.value) in suppressed
            else None
        )
        logs.append(
            CommunicationLog(
                id=log_id,
                tenant_id=actor.tenant_id,
                user=owner,
                channel=channel,
                provider=provider.name,
                template=tmpl,
                recipient=recipient.value,
                subject=rendered.subject,
                content=rendered.content,
                status=Status.FAILED if error else Status.PENDING,
                error=error,
                batch_id=batch.id,
                send_payload=None if error else (payload or None),
                created_at=now,
                updated_at=now,
            )
        )
    pending = sum(1 for log in logs if log.status == Status.PENDING)
    if not pending:
        batch.completed_at = now
    with transaction.atomic():
        batch.save()
        CommunicationLog.objects.bulk_create(logs, batch_size=2000)
        if pending:
            transaction.on_commit(lambda: enqueue_dispatch(batch.id, pending))
        else:
            notify_batch_completed(batch_id=batch.id)
    return BulkResult(batch=batch, logs=logs)


def bulk_send_now(**kwargs) -> BulkResult:
    """bulk_send in its own transaction, for callers outside the API (admin actions)."""
    with transaction.atomic(durable=True):
        return bulk_send(**kwargs)


def enqueue_dispatch(batch_id: str, pending: int) -> None:
    """Start dispatch tasks for a batch; a broker outage only delays them (the sweeper retries)."""
    from communication.tasks import dispatch_batch

    workers = max(1, min(settings.DISPATCH_FANOUT, -(-pending // settings.DISPATCH_CHUNK_SIZE)))
    try:
        for _ in range(workers):
            dispatch_batch.delay(batch_id)
    except (OSError, BrokerError) as exc:
        logger.warning("Could not enqueue batch %s (%s); the pending sweeper will pick it up.", batch_id, exc)


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


def batch_complete_if_done(*, batch_id: str) -> bool:
    """Mark the batch complete once no log of it is pending; True only for the call that did.

    That call also tells the sender, so the notice goes out exactly once.
    """
    pending = CommunicationLog.objects.filter(batch_id=OuterRef("id"), status=Status.PENDING)
    completed = bool(
        Batch.objects.filter(id=batch_id, completed_at__isnull=True)
        .filter(~Exists(pending))
        .update(completed_at=timezone.now())
    )
    if completed:
        notify_batch_completed(batch_id=batch_id)
    return completed


def notify_batch_completed(*, batch_id: str) -> None:
    """One inbox notice to the sender with the batch's counts and a link to its logs."""
    batch = Batch.objects.get(id=batch_id)
    counts = batch_status_counts(batch_id=batch_id)
    delivered_or_sent = counts[Status.SENT] + counts[Status.DELIVERED]
    logs_path = "admin/communication/logs" if batch.sender_id != batch.user_id else "communication/logs"
    channel = "SMS" if batch.channel == "sms" else "email"
    notify(
        tenant_id=batch.tenant_id,
        user_ids=[batch.sender_id],
        type="communication",
        event_type="communication.bulk.completed",
        priority="high" if counts[Status.FAILED] else "low",
        title=f"Bulk {channel} finished: {delivered_or_sent:,} sent, {counts[Status.FAILED]:,} failed",
        content=f"Your bulk {channel} to {batch.total:,} recipients has finished sending.",
        action_url=f"/{settings.API_PREFIX}{logs_path}?batch_id={batch.id}",
        metadata={"batch_id": batch.id, "channel": batch.channel, "total": batch.total, **counts},
    )


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


# --- Suppression list ---------------------------------------------------------------------


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


# --- Provider status reports --------------------------------------------------------------


@dataclass(frozen=True)
class ReportsApplied:
    applied: int
    unknown: int


def reports_apply(reports: Sequence[StatusReport]) -> ReportsApplied:
    """Apply provider status reports (polling or push) through the forward-only rule.

    One UPDATE per status and chunk; it skips ids that match no log. Ids we do not know
    (another system's messages, or a report that beat our own `sent` record) are counted
    and logged, not errors. Counting them costs a query only when some report changed
    nothing; when every id changed a log, none can be unknown.
    """
    if not reports:
        return ReportsApplied(0, 0)
    updates = [StatusUpdate(r.provider_message_id, r.status, at=r.at, error=r.error) for r in reports]
    applied = logs_apply_status(updates, match_field="provider_message_id")
    ids = list({report.provider_message_id for report in reports})
    unknown = 0
    if applied < len(ids):
        known = sum(
            CommunicationLog.objects.filter(provider_message_id__in=chunk).count()
            for chunk in chunked(ids, UPDATE_CHUNK)
        )
        unknown = len(ids) - known
    if unknown:
        logger.info("%d status reports name message ids we do not know", unknown)
    return ReportsApplied(applied=applied, unknown=unknown)


def receipt_fingerprint(data: Mapping) -> str:
    """A digest of a pushed receipt's fields that is the same whether they came as a form
    (lists of strings) or as JSON (strings and numbers)."""
    if hasattr(data, "lists"):
        fields = {key: values[0] if len(values) == 1 else values for key, values in data.lists()}
    else:
        fields = dict(data)
    canonical = {
        key: value if isinstance(value, list | dict) else str(value) for key, value in fields.items()
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ReplayedReceipt(PermissionDeniedError):
    default_message = gettext_lazy("This push's token was already used with other fields.")


def receipt_token_claim(*, provider: str, token: str, fingerprint: str) -> bool:
    """Record a push's one-time token; call it inside the transaction that applies the push.

    True for a token never seen; False for an identical redelivery (already applied: only
    acknowledge it); ReplayedReceipt when the token comes back with other fields.
    """
    try:
        with transaction.atomic():
            ReceiptToken.objects.create(provider=provider, token=token, fingerprint=fingerprint)
        return True
    except IntegrityError:
        seen = ReceiptToken.objects.get(provider=provider, token=token)
    if seen.fingerprint != fingerprint:
        raise ReplayedReceipt()
    return False


def receipt_tokens_purge() -> int:
    """Forget tokens older than RECEIPT_TOKEN_RETENTION (see README: SUBHOOK replay)."""
    cutoff = timezone.now() - timedelta(seconds=settings.RECEIPT_TOKEN_RETENTION_SECONDS)
    deleted, _ = ReceiptToken.objects.filter(received_at__lt=cutoff).delete()
    return deleted


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


# --- Staff retry --------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryResult:
    batch: Batch | None
    retried: int
    skipped: dict[str, int]  # reason → how many


def logs_retry(*, actor: User, log_ids: Sequence[str]) -> RetryResult:
    """Resend failed logs as new pending logs in a new batch, through the normal pipeline.

    The failed log stays as it was (status never moves backwards); its copy points back at
    it with `retry_of`. Logs whose real text or variables were erased (sensitive and
    provider templates) cannot be resent, and suppressed recipients are skipped.
    """
    queryset = CommunicationLog.objects.filter(id__in=log_ids, status=Status.FAILED)
    if not actor.is_platform_admin:
        queryset = queryset.filter(tenant_id=actor.tenant_id)
    originals = list(queryset.select_related("template"))
    skipped: dict[str, int] = defaultdict(int)
    skipped["not failed or not visible"] = len(set(log_ids)) - len(originals)
    by_scope: dict[tuple[str, str], list[str]] = defaultdict(list)
    for original in originals:
        by_scope[(original.tenant_id, original.channel)].append(original.recipient)
    suppressed = {
        scope: suppressed_keys(tenant_id=scope[0], channel=scope[1], recipients=recipients)
        for scope, recipients in by_scope.items()
    }
    by_batch: dict[tuple[str, str, str], list[CommunicationLog]] = defaultdict(list)
    for original in originals:
        if original.template and (original.template.sensitive or original.template.provider_template_id):
            skipped["its real text or variables were erased after sending"] += 1
        elif not normalise(original.channel, original.recipient).is_valid:
            skipped["invalid recipient"] += 1
        elif (
            suppression_key(original.channel, original.recipient)
            in suppressed[(original.tenant_id, original.channel)]
        ):
            skipped["recipient is suppressed"] += 1
        else:
            by_batch[(original.tenant_id, original.user_id, original.channel)].append(original)
    skipped = {reason: count for reason, count in skipped.items() if count}
    if not by_batch:
        return RetryResult(batch=None, retried=0, skipped=skipped)

    now = timezone.now()
    created_batches = []
    with transaction.atomic():
        for (tenant_id, user_id, channel), group in by_batch.items():
            batch = Batch.objects.create(
                tenant_id=tenant_id,
                sender=actor,
                user_id=user_id,
                channel=channel,
                total=len(group),
                created_at=now,
            )
            copies = [
                CommunicationLog(
                    id=log_id,
                    tenant_id=tenant_id,
                    user_id=user_id,
                    channel=channel,
                    provider=provider_for_channel(channel).name,
                    template_id=original.template_id,
                    recipient=original.recipient,
                    subject=original.subject,
                    content=original.content,
                    batch_id=batch.id,
                    retry_of=original.id,
                    created_at=now,
                    updated_at=now,
                )
                for log_id, original in zip(new_ids("log", len(group)), group, strict=True)
            ]
            CommunicationLog.objects.bulk_create(copies)
            created_batches.append((batch, len(copies)))
        for batch, count in created_batches:
            transaction.on_commit(lambda batch=batch, count=count: enqueue_dispatch(batch.id, count))
    return RetryResult(
        batch=created_batches[0][0], retried=sum(c for _, c in created_batches), skipped=skipped
    )
