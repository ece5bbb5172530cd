"""The events outbox: written in the transaction of each change, numbered in commit order.

- Message events (`message.sent`, `.delivered`, `.failed`, `.unknown`, `.reconciled`) are
  written by database triggers on the log table, so every write path — the dispatcher's array
  UPDATEs, bulk creation of refused logs, cancels, the sweeper — records them in its own
  transaction: a rolled-back change leaves no event, a committed one always has its event.
  PostgreSQL: statement triggers over transition tables (one INSERT … SELECT per statement);
  SQLite: row triggers.
- `batch.completed`, `suppression.added` and `provider.switched` are recorded by the services
  that make those changes (`event_record`), in their transactions.
- `events_sequence()` (beat, every 2 s, and before each feed read) takes the sequencer's row
  lock, gives the next positions to committed events in id order, serialises each body once
  and fans it out to the tenant's subscribed webhook endpoints, all in one transaction. An
  event still uncommitted is invisible to it and gets a later position: a reader of
  `position > cursor` can never skip one (the commit-order trap of ids taken at INSERT).
"""

import json
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from authms.api.envelope import rfc3339
from authms.ids import new_id
from authms.triggers import TriggerSet
from communication.masking import mask_recipient, redact_recipient
from communication.models import Event, EventSequence, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from communication.services.webhooks import kick_webhook_sender

logger = logging.getLogger(__name__)

_COLUMNS = (
    "id, tenant_id, type, occurred_at, user_id, batch_id, log_id, channel, provider, recipient, status, "
    "status_detail, error, provider_message_id, template_id, log_created_at, sent_at, delivered_at"
)


def _type_of(row: str, *, reconciled: bool = False) -> str:
    if reconciled:
        return "'message.reconciled'"
    return (
        f"CASE {row}status WHEN 'sent' THEN 'message.sent' WHEN 'delivered' THEN 'message.delivered' "
        f"ELSE CASE WHEN {row}status_detail = 'unknown' THEN 'message.unknown' ELSE 'message.failed' END END"
    )


def _values(row: str, new_id_sql: str, event_type: str) -> str:
    return (
        f"{new_id_sql}, {row}tenant_id, {event_type}, {row}updated_at, {row}user_id, {row}batch_id, {row}id, "
        f"{row}channel, {row}provider, {row}recipient, {row}status, coalesce({row}status_detail, ''), {row}error, "
        f"{row}provider_message_id, {row}template_id, {row}created_at, {row}sent_at, {row}delivered_at"
    )


# Time first (milliseconds, as hex), then 80 random bits: the unique index on `id` takes each
# statement's thousands of events at its right edge, in order, instead of scattered over the
# whole index (a random id made a 5,000-report update 15 % slower).
_PG_ID = (
    "'evt_' || lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')"
    " || substr(replace(gen_random_uuid()::text, '-', ''), 1, 20)"
)
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION communication_log_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO communication_event ({_COLUMNS})
        SELECT {_values("n.", _PG_ID, _type_of("n."))} FROM new_rows n WHERE n.status <> 'pending';
    ELSE
        INSERT INTO communication_event ({_COLUMNS})
        SELECT {_values("n.", _PG_ID, _type_of("n."))}
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status <> o.status AND n.status <> 'pending'
        UNION ALL
        SELECT {_values("n.", _PG_ID, _type_of("n.", reconciled=True))}
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status <> o.status AND o.status_detail = 'reconciling';
    END IF;
    RETURN NULL;
END $$;
"""
_PG_TRIGGERS = [
    _PG_FUNCTION,
    """CREATE TRIGGER communication_log_event_insert AFTER INSERT ON communication_log
       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION communication_log_event()""",
    """CREATE TRIGGER communication_log_event_update AFTER UPDATE ON communication_log
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION communication_log_event()""",
]

_SQLITE_ID = (
    "'evt_' || printf('%012x', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"
    " || lower(hex(randomblob(10)))"
)
_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER communication_log_event_insert AFTER INSERT ON communication_log
        WHEN NEW.status <> 'pending'
        BEGIN INSERT INTO communication_event ({_COLUMNS}) VALUES ({_values("NEW.", _SQLITE_ID, _type_of("NEW."))}); END""",
    f"""CREATE TRIGGER communication_log_event_update AFTER UPDATE ON communication_log
        WHEN NEW.status <> OLD.status
        BEGIN
            INSERT INTO communication_event ({_COLUMNS})
            SELECT {_values("NEW.", _SQLITE_ID, _type_of("NEW."))} WHERE NEW.status <> 'pending';
            INSERT INTO communication_event ({_COLUMNS})
            SELECT {_values("NEW.", _SQLITE_ID, _type_of("NEW.", reconciled=True))}
            WHERE OLD.status_detail = 'reconciling';
        END""",
]


TRIGGERS = TriggerSet(
    table="communication_log",
    prefix="communication_log_event",
    events=("insert", "update"),
    function="communication_log_event",
    postgres=_PG_TRIGGERS,
    sqlite=_SQLITE_TRIGGERS,
)
install_event_triggers = TRIGGERS.install  # migration 0023
remove_event_triggers = TRIGGERS.remove


def event_record(*, type: str, tenant_id: str | None, data: dict, **fields) -> None:
    """An event of a change made by Python code, in the caller's transaction."""
    Event.objects.create(
        id=new_id("evt"), type=type, tenant_id=tenant_id, occurred_at=timezone.now(), data=data, **fields
    )


# --- Sequencing, bodies and fan-out ---------------------------------------------------------

SEQUENCE_CHUNK = 5000


def events_sequence(*, limit: int = SEQUENCE_CHUNK) -> int:
    """Number up to `limit` committed events in order, freeze their bodies and create their
    webhook deliveries. Returns how many; 0 also when another sequencer holds the lock."""
    with transaction.atomic():
        sequence = _locked_sequence()
        if sequence is None:
            return 0
        events = list(Event.objects.filter(position__isnull=True).order_by("seq")[:limit])
        if not events:
            return 0
        for offset, event in enumerate(events, start=1):
            event.position = sequence.last_position + offset
            event.body = event_body(event)
        _store_positions(events)
        EventSequence.objects.filter(pk=sequence.pk).update(last_position=events[-1].position)
        due = _fan_out(events)
    if due:
        transaction.on_commit(kick_webhook_sender)
    return len(events)


def _store_positions(events: list[Event]) -> None:
    """PostgreSQL: one UPDATE joined to unnest()ed arrays (bulk_update's CASE per row cost more
    than the rest of a sequencing run); elsewhere bulk_update."""
    if connection.vendor != "postgresql":
        Event.objects.bulk_update(events, ["position", "body"], batch_size=1000)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE communication_event AS e SET position = v.position, body = v.body "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS v(seq, position, body) WHERE e.seq = v.seq",
            [[e.seq for e in events], [e.position for e in events], [e.body for e in events]],
        )


def _locked_sequence() -> EventSequence | None:
    EventSequence.objects.get_or_create(pk=1)
    if connection.vendor != "postgresql":  # SQLite: one writer at a time already
        return EventSequence.objects.get(pk=1)
    return EventSequence.objects.select_for_update(skip_locked=True).filter(pk=1).first()


def event_body(event: Event) -> str:
    """The event as the feed lists it and webhooks send it: minified JSON, recipient masked,
    never content, secrets or raw provider answers."""
    if event.data is not None:
        data = event.data
    else:
        data = {
            "id": event.log_id,
            "batch_id": event.batch_id,
            "user_id": event.user_id,
            "channel": event.channel,
            "provider": event.provider or None,
            "status": event.status,
            "status_detail": event.status_detail or None,
            "recipient": mask_recipient(event.channel, event.recipient),
            "template_id": event.template_id,
            "provider_message_id": event.provider_message_id,
            "error": _error_of(event),
            "created_at": rfc3339(event.log_created_at),
            "sent_at": rfc3339(event.sent_at),
            "delivered_at": rfc3339(event.delivered_at),
        }
    body = {
        "id": event.id,
        "type": event.type,
        "timestamp": rfc3339(event.occurred_at),
        "tenant_id": event.tenant_id,
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _error_of(event: Event) -> dict | None:
    if event.status != "failed":
        return None
    message = redact_recipient(event.error or "", event.channel, event.recipient)
    return {"code": event.status_detail or "failed", "message": message[:500]}


def _fan_out(events: list[Event]) -> int:
    """One pending delivery per event and enabled endpoint of its tenant subscribed to its type."""
    tenants = {event.tenant_id for event in events if event.tenant_id}
    endpoints = defaultdict(list)
    for endpoint in WebhookEndpoint.objects.filter(tenant_id__in=tenants, enabled=True).only(
        "id", "tenant_id", "event_types"
    ):
        endpoints[endpoint.tenant_id].append(endpoint)
    now = timezone.now()
    deliveries = [
        WebhookDelivery(endpoint_id=endpoint.id, event_id=event.seq, next_attempt_at=now, created_at=now)
        for event in events
        for endpoint in endpoints.get(event.tenant_id, [])
        if not endpoint.event_types or event.type in endpoint.event_types
    ]
    WebhookDelivery.objects.bulk_create(deliveries, batch_size=2000)
    return len(deliveries)


PURGE_CHUNK = 5000


def events_purge(*, older_than: timedelta | None = None) -> int:
    """Drop events past the retention (EVENTS_RETENTION, 30 days), with their deliveries and
    attempts, in chunks (a month of events is millions of rows), and remember the highest
    position dropped, so a cursor from before it is told to resync (410)."""
    cutoff: datetime = timezone.now() - (older_than or timedelta(seconds=settings.EVENTS_RETENTION_SECONDS))
    old = Event.objects.filter(occurred_at__lt=cutoff, position__isnull=False)
    highest = old.order_by("-position").values_list("position", flat=True).first()
    if highest is None:
        return 0
    EventSequence.objects.filter(pk=1).update(purged_through=highest)  # first: readers get 410, not gaps
    deleted = 0
    while seqs := list(
        Event.objects.filter(position__lte=highest).values_list("seq", flat=True)[:PURGE_CHUNK]
    ):
        with transaction.atomic():
            WebhookAttempt.objects.filter(delivery__event_id__in=seqs).delete()
            WebhookDelivery.objects.filter(event_id__in=seqs).delete()
            deleted += Event.objects.filter(seq__in=seqs).delete()[0]
    return deleted
