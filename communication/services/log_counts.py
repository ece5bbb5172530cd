"""Maintained log counts (LogCount): the dashboard's figures without COUNT over the log table.

Database triggers keep them, so no write path can forget one (bulk `update()` and SQL included),
and the change counts in the transaction that made it: a rolled-back send leaves no trace.

- PostgreSQL: statement-level triggers with transition tables append one aggregated row per
  group and statement to LogCountDelta (no counter row is locked, so concurrent workers never
  queue behind each other and cannot deadlock on it). `fold_log_counts()` moves the deltas into
  LogCount with one DELETE … RETURNING, so every delta is counted exactly once.
- SQLite (the embedded run, one writer at a time): row-level triggers update LogCount directly.

Readers add LogCount and LogCountDelta in one statement (`communication.selectors`).
`recount_logs()` rebuilds both from the log table (`manage.py recount_logs`).
"""

from django.db import connection, transaction

from authms.triggers import TriggerSet

COUNTED = "tenant_id, hour, channel, provider, status, error, messages, latency_ms, latency_messages"
GROUP = "tenant_id, hour, channel, provider, status, error"

# One log's group and delivery latency, as columns named like LogCount's.
_PG_KEY = """
    tenant_id,
    date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
    channel, provider, status,
    CASE WHEN status = 'failed' THEN left(coalesce(error, ''), 200) ELSE '' END AS error,
    CASE WHEN status = 'delivered' AND delivered_at IS NOT NULL AND sent_at IS NOT NULL
         THEN greatest(0, (extract(epoch FROM delivered_at - sent_at) * 1000)::bigint) END AS latency
"""

# Signed rows (+1 for a log as it is now, -1 for a log as it was) summed per group.
_PG_SUM = f"""
    SELECT {GROUP}, sum(sign), coalesce(sum(sign * latency), 0), sum(CASE WHEN latency IS NULL THEN 0 ELSE sign END)
    FROM ({{signed}}) AS signed GROUP BY {GROUP}
    HAVING sum(sign) <> 0 OR coalesce(sum(sign * latency), 0) <> 0
        OR sum(CASE WHEN latency IS NULL THEN 0 ELSE sign END) <> 0
    ORDER BY {GROUP}
"""

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION communication_log_count_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO communication_log_count_delta ({COUNTED})
        {_PG_SUM.format(signed=f"SELECT 1 AS sign, {_PG_KEY} FROM new_rows")};
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO communication_log_count_delta ({COUNTED})
        {
    _PG_SUM.format(
        signed=f"SELECT 1 AS sign, {_PG_KEY} FROM new_rows UNION ALL SELECT -1 AS sign, {_PG_KEY} FROM old_rows"
    )
};
    ELSE
        INSERT INTO communication_log_count_delta ({COUNTED})
        {_PG_SUM.format(signed=f"SELECT -1 AS sign, {_PG_KEY} FROM old_rows")};
    END IF;
    RETURN NULL;
END $$;
"""

_PG_TRIGGERS = [
    _PG_FUNCTION,
    """CREATE TRIGGER communication_log_count_insert AFTER INSERT ON communication_log
       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION communication_log_count_delta()""",
    """CREATE TRIGGER communication_log_count_update AFTER UPDATE ON communication_log
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION communication_log_count_delta()""",
    """CREATE TRIGGER communication_log_count_delete AFTER DELETE ON communication_log
       REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION communication_log_count_delta()""",
]


def _sqlite_key(row: str) -> tuple[str, str, str]:
    """The hour, failure reason and delivery latency of log `row` ("NEW.", "OLD." or "")."""
    latency = (
        f"CASE WHEN {row}status = 'delivered' AND {row}delivered_at IS NOT NULL AND {row}sent_at IS NOT NULL "
        f"THEN max(0, CAST(round((julianday({row}delivered_at) - julianday({row}sent_at)) * 86400000) AS INTEGER)) END"
    )
    error = f"CASE WHEN {row}status = 'failed' THEN substr(coalesce({row}error, ''), 1, 200) ELSE '' END"
    return f"strftime('%Y-%m-%d %H:00:00', {row}created_at)", error, latency


def _sqlite_upsert(row: str, sign: int) -> str:
    """Adds `sign` times log `row` (NEW. or OLD.) to its LogCount group."""
    hour, error, latency = _sqlite_key(row)
    return f"""
        INSERT INTO communication_log_count ({COUNTED})
        VALUES ({row}tenant_id, {hour}, {row}channel, {row}provider, {row}status, {error},
                {sign}, {sign} * coalesce({latency}, 0), CASE WHEN ({latency}) IS NULL THEN 0 ELSE {sign} END)
        ON CONFLICT ({GROUP}) DO UPDATE SET
            messages = messages + excluded.messages,
            latency_ms = latency_ms + excluded.latency_ms,
            latency_messages = latency_messages + excluded.latency_messages;
    """


_SQLITE_CHANGED = " OR ".join(
    f"OLD.{column} IS NOT NEW.{column}"
    for column in (
        "tenant_id",
        "created_at",
        "channel",
        "provider",
        "status",
        "error",
        "sent_at",
        "delivered_at",
    )
)

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER communication_log_count_insert AFTER INSERT ON communication_log
        BEGIN {_sqlite_upsert("NEW.", 1)} END""",
    f"""CREATE TRIGGER communication_log_count_update AFTER UPDATE ON communication_log
        WHEN {_SQLITE_CHANGED}
        BEGIN {_sqlite_upsert("OLD.", -1)} {_sqlite_upsert("NEW.", 1)} END""",
    f"""CREATE TRIGGER communication_log_count_delete AFTER DELETE ON communication_log
        BEGIN {_sqlite_upsert("OLD.", -1)} END""",
]


def _count_from_scratch(conn) -> None:
    with conn.cursor() as cursor:
        cursor.execute("DELETE FROM communication_log_count_delta")
        cursor.execute("DELETE FROM communication_log_count")
        if conn.vendor == "postgresql":
            signed = f"SELECT 1 AS sign, {_PG_KEY} FROM communication_log"
            cursor.execute(f"INSERT INTO communication_log_count ({COUNTED}) {_PG_SUM.format(signed=signed)}")
            return
        hour, error, latency = _sqlite_key("")
        cursor.execute(
            f"""
            INSERT INTO communication_log_count ({COUNTED})
            SELECT tenant_id, hour, channel, provider, status, error, count(*), coalesce(sum(latency), 0), count(latency)
            FROM (SELECT tenant_id, {hour} AS hour, channel, provider, status, {error} AS error, {latency} AS latency
                  FROM communication_log) AS logs
            GROUP BY {GROUP}
            """
        )


TRIGGERS = TriggerSet(
    table="communication_log",
    prefix="communication_log_count",
    function="communication_log_count_delta",
    postgres=_PG_TRIGGERS,
    sqlite=_SQLITE_TRIGGERS,
    recount=_count_from_scratch,
)
install_triggers = TRIGGERS.install  # migration 0014; counts what is already there
remove_triggers = TRIGGERS.remove


def recount_logs() -> None:
    """Rebuilds the counts from the log table. On PostgreSQL the log table is locked against
    writes (SHARE mode; reads go on) while it counts, so nothing changes between the count and
    the triggers taking over again: about a second per million logs."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE communication_log IN SHARE MODE")
        _count_from_scratch(connection)


def fold_log_counts() -> int:
    """Moves the deltas into LogCount (PostgreSQL; SQLite counts in place) and drops groups
    whose count came back to zero. Returns the number of deltas folded."""
    folded = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            folded = _fold_deltas(cursor)
        cursor.execute("DELETE FROM communication_log_count WHERE messages = 0 AND latency_messages = 0")
    return folded


def _fold_deltas(cursor) -> int:
    cursor.execute(
        f"""
        WITH moved AS (DELETE FROM communication_log_count_delta RETURNING {COUNTED}),
        folded AS (
            INSERT INTO communication_log_count AS c ({COUNTED})
            SELECT {GROUP}, sum(messages), sum(latency_ms), sum(latency_messages)
            FROM moved GROUP BY {GROUP} ORDER BY {GROUP}
            ON CONFLICT ({GROUP}) DO UPDATE SET
                messages = c.messages + excluded.messages,
                latency_ms = c.latency_ms + excluded.latency_ms,
                latency_messages = c.latency_messages + excluded.latency_messages
        )
        SELECT count(*) FROM moved
        """
    )
    return cursor.fetchone()[0]
