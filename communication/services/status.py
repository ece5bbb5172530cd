"""Status changes: the one forward-only status function, provider reports and pushed receipts."""

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Value
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy

from authms.errors import PermissionDeniedError
from authms.iterables import chunked
from authms.side_by_side import map_side_by_side
from communication.models import (
    RESPONSE_MAX_BYTES,
    CommunicationLog,
    PushedReports,
    ReceiptToken,
    Status,
    StatusDetail,
    statuses_that_may_become,
)
from providers.base import (
    StatusReport,
)

logger = logging.getLogger(__name__)

# Logs changed per UPDATE: each statement runs the log table's statement triggers (counts,
# events) once, so larger chunks pay that less often (20,000 reports applied 10 % faster than
# in chunks of 1,000); a chunk's row locks last one statement (about 0.25 s at 5,000).
UPDATE_CHUNK = 5000


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


class StatusUpdate(NamedTuple):
    """A requested status change of one log, found by `key` (log id or provider message id).
    A named tuple: made 100,000 at a time from a page of reports, and a frozen dataclass took
    four times as long to build."""

    key: str
    status: str
    at: datetime | None = None
    provider_message_id: str | None = None
    error: str | None = None
    response: str | None = None
    fee: int | None = None
    status_detail: str | None = None


_TIMESTAMP_FIELD = {Status.SENT: "sent_at", Status.DELIVERED: "delivered_at"}


def _chunk_columns(chunk: list[StatusUpdate], status: str, now: datetime) -> dict[str, list]:
    """Per-row values of the optional columns, None where a row keeps its current value."""
    columns: dict[str, list] = {}
    if status in _TIMESTAMP_FIELD:
        columns[_TIMESTAMP_FIELD[status]] = [update.at or now for update in chunk]
    for name in ("provider_message_id", "error", "fee", "status_detail"):
        values = [getattr(update, name) for update in chunk]
        if any(value is not None for value in values):
            columns[name] = values
    responses = [truncate_response(update.response) for update in chunk]
    if any(response is not None for response in responses):
        columns["response"] = responses
    return columns


def _update_with_json(keys, columns, *, status, allowed_from, match_field, now) -> int:
    """PostgreSQL: one UPDATE joined to its rows' values, sent as one JSON document of rows.

    JSON because dumping it is one C call: psycopg dumps a Python list into an array
    parameter element by element (3.6 µs per timestamp: a fifth of the time of a chunk of
    5,000 reports went there)."""
    meta, quote = CommunicationLog._meta, connection.ops.quote_name
    fields = {name: meta.get_field(name) for name in columns}
    names = list(columns)
    assignments = "".join(
        f", {quote(fields[n].column)} = COALESCE(v.{quote(n)}, l.{quote(fields[n].column)})" for n in names
    )
    values = "".join(
        f", (r->>{i})::{fields[n].cast_db_type(connection)} AS {quote(n)}"
        for i, n in enumerate(names, start=1)
    )
    key_column = quote(meta.get_field(match_field).column)
    sql = (
        f"UPDATE {quote(meta.db_table)} AS l SET status = %s, updated_at = %s, send_payload = NULL{assignments} "  # noqa: S608 - quoted identifiers, values as parameters
        f"FROM (SELECT r->>0 AS key{values} FROM json_array_elements(%s::json) AS r) AS v "
        f"WHERE l.{key_column} = v.key AND l.status = ANY(%s)"
    )
    rows = list(zip(keys, *(_json_values(fields[name], columns[name]) for name in names), strict=True))
    with connection.cursor() as cursor:
        cursor.execute(sql, [status, now, json.dumps(rows), list(allowed_from)])
        return cursor.rowcount


def _json_values(field, values: list) -> list:
    """A column's values as JSON carries them for PostgreSQL to cast: strings and integers as
    they are, aware datetimes in ISO 8601, anything else through the field first."""
    if all(value is None or type(value) in (str, int) for value in values):
        return values
    if all(value is None or (type(value) is datetime and value.tzinfo is not None) for value in values):
        return [None if value is None else value.isoformat() for value in values]
    prepared = (field.get_db_prep_value(value, connection, prepared=False) for value in values)
    return [
        value if value is None or type(value) in (str, int, float, bool) else str(value) for value in prepared
    ]


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
    return _update_with_json if connection.vendor == "postgresql" else _update_with_case


def logs_apply_status(updates: Iterable[StatusUpdate], *, match_field: str = "id") -> int:
    """The one way a log's status changes; returns how many logs changed.

    Forward-only by construction: each UPDATE touches only rows whose current status may
    become the new one (pending → sent → delivered | failed), so a late or duplicated
    report is a no-op. One UPDATE per target status and chunk (UPDATE_CHUNK), not one per row;
    on PostgreSQL the per-row values travel as one JSON document (`_update_with_json`).
    """
    # Per status, the first update of each key: a second one to the same status could only
    # be a no-op (forward-only), and with every key once, no two chunks touch the same log.
    by_status: dict[str, dict[str, StatusUpdate]] = defaultdict(dict)
    for update in updates:
        by_status[update.status].setdefault(update.key, update)
    execute = _executor()
    now = timezone.now()

    def apply(status: str, chunk: list[StatusUpdate]) -> int:
        return execute(
            [update.key for update in chunk],
            _chunk_columns(chunk, status, now),
            status=status,
            allowed_from=statuses_that_may_become(status),
            match_field=match_field,
            now=now,
        )

    changed = 0
    for status, group in by_status.items():
        chunks = list(chunked(group.values(), UPDATE_CHUNK))
        changed += sum(
            map_side_by_side(partial(apply, status), chunks, threads=settings.STATUS_UPDATE_THREADS)
        )
    return changed


# --- Provider status reports --------------------------------------------------------------


@dataclass(frozen=True)
class ReportsApplied:
    applied: int
    unknown: int


def report_as_dict(report: StatusReport) -> dict:
    """A report as a task argument (JSON)."""
    return {**vars(report), "at": report.at.isoformat() if report.at else None}


def report_from_dict(data: dict) -> StatusReport:
    return StatusReport(**{**data, "at": datetime.fromisoformat(data["at"]) if data.get("at") else None})


def reports_apply(reports: Sequence[StatusReport]) -> ReportsApplied:
    """Apply provider status reports (polling or push) through the forward-only rule.

    One UPDATE per status and chunk; it skips ids that match no log. Ids we do not know
    (another system's messages, or a report that beat our own `sent` record) are counted
    and logged, not errors. Counting them costs a query only when some report changed
    nothing; when every id changed a log, none can be unknown.
    """
    if not reports:
        return ReportsApplied(0, 0)
    updates = [
        StatusUpdate(
            r.provider_message_id,
            r.status,
            at=r.at,
            error=r.error,
            status_detail=StatusDetail.UNDELIVERED if r.status == Status.FAILED else "",
        )
        for r in reports
    ]
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


def pushed_reports_keep(*, provider: str, reports: Sequence[StatusReport]) -> int:
    """Keep a push's reports until a worker applies them (`pushed_reports_apply`); the id."""
    return PushedReports.objects.create(provider=provider, reports=[report_as_dict(r) for r in reports]).id


def pushed_reports_apply(*, kept_id: int) -> int:
    """Apply kept reports and forget them, in one transaction; how many logs changed. 0 when
    they are gone (applied) or another worker is applying them."""
    with transaction.atomic():
        kept = PushedReports.objects.select_for_update(skip_locked=True).filter(id=kept_id).first()
        if kept is None:
            return 0
        applied = reports_apply([report_from_dict(report) for report in kept.reports]).applied
        kept.delete()
    return applied


def pushed_reports_apply_left(*, limit: int = 100) -> int:
    """For the sweeper: kept reports still there PUSHED_REPORTS_SWEEP_AFTER after they came,
    whose task was lost, applied here. One that fails is logged and left for the next sweep,
    without holding up the others."""
    before = timezone.now() - timedelta(seconds=settings.PUSHED_REPORTS_SWEEP_AFTER_SECONDS)
    left = PushedReports.objects.filter(received_at__lt=before).order_by("received_at")
    applied = 0
    for kept_id in left.values_list("id", flat=True)[:limit]:
        try:
            applied += pushed_reports_apply(kept_id=kept_id)
        except Exception:
            logger.exception("Could not apply kept pushed reports %s", kept_id)
    return applied


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
