"""Monthly partitions of the log table (PostgreSQL; the embedded SQLite run keeps one table).

`communication_log` is partitioned by range of `created_at`, one partition a month
(`communication_log_2027_01`: [2027-01-01, 2027-02-01) UTC), so the retention purge drops a
month of logs as one table instead of deleting millions of rows, and a month's indexes stay the
size of a month. Around them:
- `communication_log_legacy`: the table as it was before partitioning, attached in place (no
  copy) as the partition of everything before the first month partition. The purge deletes its
  expired rows in batches and drops it once it is empty.
- `communication_log_default`: catches a log outside every month partition (beat was down past
  the months made ahead, or a time far off). Making that month's partition moves them over.

The primary key is (id, created_at): PostgreSQL requires the partition key in every unique
index. Ids stay unique because they are ULIDs (48-bit millisecond time + 80 random bits, see
authms.ids); by id alone a lookup probes each partition's primary key index. The counting and
events triggers live on the parent and see every partition's rows.
"""

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from communication.models import CommunicationLog, DeliveryAttempt, EmailEvent
from communication.services.log_counts import uncount_rows_of

PARENT = "communication_log"
LEGACY = "communication_log_legacy"
DEFAULT = "communication_log_default"
PURGE_BATCH = 5_000


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(moment: datetime) -> datetime:
    """The start of the month after `moment`'s."""
    return month_start(month_start(moment) + timedelta(days=32))


def month_partition_name(start: datetime) -> str:
    return f"{PARENT}_{start:%Y_%m}"


def _quoted(moment: datetime) -> str:
    """A timestamptz literal (DDL takes no parameters); only ever our own datetimes."""
    return f"'{moment.astimezone(UTC).isoformat()}'"


def convert_to_partitioned(schema_editor) -> None:
    """Migration 0026: the unpartitioned log table becomes the legacy partition of a new
    partitioned parent with the same columns, constraints and indexes. Its indexes and foreign
    keys are attached to the parent's as they are; only the (id, created_at) primary key is
    built in place of (id), and attaching checks every row is before next month: two scans of
    the table under the migration's lock (see the README's production notes)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {LEGACY}")
        # Its key becomes (id, created_at), the parent's, so attaching takes it as it is.
        cursor.execute(f"CREATE UNIQUE INDEX {LEGACY}_pkey_new ON {LEGACY} (id, created_at)")
        cursor.execute(f"ALTER TABLE {LEGACY} DROP CONSTRAINT {PARENT}_pkey")
        cursor.execute(
            f"ALTER TABLE {LEGACY} ADD CONSTRAINT {LEGACY}_pkey PRIMARY KEY USING INDEX {LEGACY}_pkey_new"
        )
        cursor.execute(
            f"""CREATE TABLE {PARENT} (LIKE {LEGACY} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
                PARTITION BY RANGE (created_at)"""
        )
        cursor.execute(f"ALTER TABLE {PARENT} ADD CONSTRAINT {PARENT}_pkey PRIMARY KEY (id, created_at)")
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
            " AND contype = 'f'",
            [LEGACY],
        )
        for name, definition in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {PARENT} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname <> %s",
            [LEGACY, f"{LEGACY}_pkey"],
        )
        for name, definition in cursor.fetchall():
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:55]}_legacy"')
            cursor.execute(re.sub(rf" ON (\S+\.)?{LEGACY} ", f" ON {PARENT} ", definition, count=1))
        until = next_month(timezone.now())
        cursor.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {LEGACY} FOR VALUES FROM (MINVALUE) TO ({_quoted(until)})"
        )
        cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {PARENT} DEFAULT")
    _ensure_months(
        schema_editor.connection, until=timezone.now(), months_ahead=settings.LOG_PARTITION_MONTHS_AHEAD
    )


def log_partitions() -> list[tuple[str, datetime | None, datetime | None]]:
    """The log table's partitions as (name, from, to), oldest first; None for an open bound
    (the legacy partition's start, and both of the default partition's)."""
    if connection.vendor != "postgresql":
        return []
    return _partitions(connection)


def _partitions(conn) -> list[tuple[str, datetime | None, datetime | None]]:
    with conn.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname,
                   CASE WHEN b.lower = 'MINVALUE' THEN NULL ELSE b.lower::timestamptz END,
                   b.upper::timestamptz
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            CROSS JOIN LATERAL (
                SELECT substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \\(''?([^'')]+)''?\\)') AS lower,
                       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)') AS upper
            ) b
            WHERE i.inhparent = %s::regclass
            ORDER BY b.upper::timestamptz NULLS LAST
            """,
            [PARENT],
        )
        return cursor.fetchall()


def ensure_log_partitions(*, months_ahead: int | None = None) -> list[str]:
    """Makes the month partitions from the last one there through `months_ahead` months after
    this one (LOG_PARTITION_MONTHS_AHEAD, 1), moving any logs the default partition caught
    for those months. Beat runs it hourly; a no-op on SQLite. Returns the partitions made."""
    if connection.vendor != "postgresql":
        return []
    ahead = settings.LOG_PARTITION_MONTHS_AHEAD if months_ahead is None else months_ahead
    return _ensure_months(connection, until=timezone.now(), months_ahead=ahead)


def _ensure_months(conn, *, until: datetime, months_ahead: int) -> list[str]:
    last = month_start(until)
    for _ in range(months_ahead):
        last = next_month(last)
    made = []
    with transaction.atomic(using=conn.alias):
        bounds = [upper for _name, _lower, upper in _partitions(conn) if upper is not None]
        start = max(bounds) if bounds else month_start(until)
        while start <= last:
            made.append(_make_month(conn, start))
            start = next_month(start)
    return made


def _make_month(conn, start: datetime) -> str:
    """One month's partition: made beside the table, given the default partition's logs of
    that month (moved partition to partition: the parent's triggers do not fire, so nothing is
    counted twice), then attached, which holds writes to the parent back only for a moment."""
    name, end = month_partition_name(start), next_month(start)
    with conn.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"""WITH moved AS (DELETE FROM {DEFAULT} WHERE created_at >= %s AND created_at < %s RETURNING *)
                INSERT INTO {name} SELECT * FROM moved""",  # noqa: S608 (our table names)
            [start, end],
        )
        cursor.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ({_quoted(start)}) TO ({_quoted(end)})"
        )
    return name


def purge_logs(*, older_than: timedelta | None = None) -> int:
    """Forgets logs past the retention (LOG_RETENTION_DAYS; 0 keeps them forever), with their
    delivery attempts and email events. PostgreSQL drops each month partition that lies wholly
    before the cutoff (so a log is kept up to a month past the retention) and deletes the
    legacy partition's expired rows in batches, then drops it once it is wholly expired;
    SQLite deletes in batches. The maintained counts stay exact. Returns the logs purged."""
    if older_than is None:
        if not settings.LOG_RETENTION_DAYS:
            return 0
        older_than = timedelta(days=settings.LOG_RETENTION_DAYS)
    cutoff = timezone.now() - older_than
    if connection.vendor != "postgresql":
        return _delete_before(cutoff)
    purged = 0
    for name, _lower, upper in log_partitions():
        if name == LEGACY:
            purged += _delete_before(min(cutoff, upper))
        if upper is not None and upper <= cutoff:  # the legacy partition is empty by now
            purged += _drop_partition(name)
    return purged


def _drop_partition(name: str) -> int:
    """One partition, its logs' counts, attempts and email events, in one transaction. Writes
    to it wait meanwhile; waiting over 5 s for the log table (a long query on it) gives up
    until the next run rather than queue every request behind the drop."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        # Deferred checks of writes earlier in this transaction run now: a table with pending
        # trigger events cannot be dropped.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"LOCK TABLE {name} IN SHARE MODE")
        cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608 (our table names)
        logs = cursor.fetchone()[0]
        uncount_rows_of(cursor, name)
        for dependent in (DeliveryAttempt, EmailEvent):
            table = dependent._meta.db_table
            cursor.execute(f"DELETE FROM {table} WHERE log_id IN (SELECT id FROM {name})")  # noqa: S608
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    return logs


def _delete_before(cutoff: datetime) -> int:
    """Deletes logs created before `cutoff` through the parent (the triggers count them out),
    PURGE_BATCH at a time, each batch its own short transaction."""
    purged = 0
    while True:
        with transaction.atomic():
            batch = CommunicationLog.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[
                :PURGE_BATCH
            ]
            logs = (
                CommunicationLog.objects.filter(id__in=list(batch))
                .delete()[1]
                .get(CommunicationLog._meta.label, 0)
            )
        if not logs:
            return purged
        purged += logs
