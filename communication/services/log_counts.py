"""Maintained log counts (LogCount): the dashboard's figures without COUNT over the log table.

Database triggers keep them, so no write path can forget one (bulk `update()` and SQL included),
and the change counts in the transaction that made it: a rolled-back send leaves no trace.

- PostgreSQL: statement-level triggers with transition tables append one aggregated row per
  group and statement to LogCountDelta (no counter row is locked, so concurrent workers never
  queue behind each other and cannot deadlock on it). `fold_log_counts()` moves the deltas into
  LogCount with one DELETE … RETURNING, so every delta is counted exactly once.
- SQLite (the embedded run, one writer at a time): row-level triggers update LogCount directly.

A second set keeps the totals without hours, LogUserCount and LogTenantCount (the log lists'
`total`), the same way with their deltas; a third the logs per user and day, LogUserDayCount
(the user list's total between two times). Readers add a table and its deltas in one statement
(`communication.selectors`). `recount_logs()` rebuilds them all from the log table
(`manage.py recount_logs`).
"""

from functools import partial

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


def _signed_inserts(targets: list[tuple[str, str, str, str]], *sources: tuple[int, str]) -> list[str]:
    """For each (delta_table, columns, summed, key), an INSERT of `summed` (a query over
    `{signed}`, the `key` columns of each (sign, relation) source with its sign) into
    `delta_table`: +1 for a log as it is now, -1 for a log as it was or is going."""
    return [
        f"INSERT INTO {delta} ({columns}) "
        + summed.format(
            signed=" UNION ALL ".join(f"SELECT {sign} AS sign, {key} FROM {rows}" for sign, rows in sources)
        )
        for delta, columns, summed, key in targets
    ]


def _pg_delta_function(name: str, targets: list[tuple[str, str, str, str]]) -> str:
    """A statement trigger function appending each target's signed sums (`_signed_inserts`)."""

    def inserts(*sources: tuple[int, str]) -> str:
        return "\n        ".join(f"{sql};" for sql in _signed_inserts(targets, *sources))

    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {inserts((1, "new_rows"))}
    ELSIF TG_OP = 'UPDATE' THEN
        {inserts((1, "new_rows"), (-1, "old_rows"))}
    ELSE
        {inserts((-1, "old_rows"))}
    END IF;
    RETURN NULL;
END $$;
"""


def _pg_statement_triggers(prefix: str, function: str) -> list[str]:
    """The log table's insert, update and delete statement triggers calling `function`."""
    tables = {
        "insert": "NEW TABLE AS new_rows",
        "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "delete": "OLD TABLE AS old_rows",
    }
    return [
        f"""CREATE TRIGGER {prefix}_{event} AFTER {event.upper()} ON communication_log
            REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"""
        for event, transition in tables.items()
    ]


_HOURLY_TARGETS = [("communication_log_count_delta", COUNTED, _PG_SUM, _PG_KEY)]
_PG_TRIGGERS = [
    _pg_delta_function("communication_log_count_delta", _HOURLY_TARGETS),
    *_pg_statement_triggers("communication_log_count", "communication_log_count_delta"),
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


def _sqlite_row_triggers(prefix: str, upsert, changed: tuple[str, ...]) -> list[str]:
    """The log table's row triggers: `upsert(row, sign)` adds a log (NEW. or OLD.) to its group,
    on an update only when one of the `changed` columns did."""
    changed_when = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in changed)
    return [
        f"""CREATE TRIGGER {prefix}_insert AFTER INSERT ON communication_log
            BEGIN {upsert("NEW.", 1)} END""",
        f"""CREATE TRIGGER {prefix}_update AFTER UPDATE ON communication_log WHEN {changed_when}
            BEGIN {upsert("OLD.", -1)} {upsert("NEW.", 1)} END""",
        f"""CREATE TRIGGER {prefix}_delete AFTER DELETE ON communication_log
            BEGIN {upsert("OLD.", -1)} END""",
    ]


_SQLITE_TRIGGERS = _sqlite_row_triggers(
    "communication_log_count",
    _sqlite_upsert,
    ("tenant_id", "created_at", "channel", "provider", "status", "error", "sent_at", "delivered_at"),
)


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


# Totals without hours, the log lists' `total` without a scan (communication.selectors): per
# user (the user list, the admin list by user_id) and per tenant (the admin list).
TOTALS = {
    "communication_log_user_count": "tenant_id, user_id, channel, status, status_detail",
    "communication_log_tenant_count": "tenant_id, channel, provider, status, status_detail",
}
# Logs per user and UTC day of creation (LogUserDayCount): the user list's exact total between
# two times. Its own triggers (migration 0027), so the earlier migrations' sets stay as they were.
DAY_TOTALS = {"communication_log_user_day_count": "tenant_id, user_id, day"}


def _group_columns(group: str, *, postgresql: bool, row: str = "") -> list[str]:
    """A total's group as SQL over a log row (`row`: "NEW." or "OLD." in a SQLite trigger):
    the log's own columns, and `day`, its UTC date of creation."""
    day = f"({row}created_at AT TIME ZONE 'UTC')::date" if postgresql else f"date({row}created_at)"
    return [day if column == "day" else f"{row}{column}" for column in group.split(", ")]


def _pg_total_sum(group: str) -> str:
    return f"""
    SELECT {group}, sum(sign) FROM ({{signed}}) AS signed
    GROUP BY {group} HAVING sum(sign) <> 0 ORDER BY {group}
"""


def _total_targets(totals: dict[str, str]) -> list[tuple[str, str, str, str]]:
    return [
        (
            f"{table}_delta",
            f"{group}, messages",
            _pg_total_sum(group),
            ", ".join(
                f"{sql} AS {column}"
                for sql, column in zip(_group_columns(group, postgresql=True), group.split(", "), strict=True)
            ),
        )
        for table, group in totals.items()
    ]


_TOTAL_TARGETS = _total_targets(TOTALS)
_DAY_TARGETS = _total_targets(DAY_TOTALS)
_EVERY_TOTAL = {**TOTALS, **DAY_TOTALS}


def _sqlite_total_upserts(totals: dict[str, str], row: str, sign: int) -> str:
    return "".join(
        f"""
        INSERT INTO {table} ({group}, messages)
        VALUES ({", ".join(_group_columns(group, postgresql=False, row=row))}, {sign})
        ON CONFLICT ({group}) DO UPDATE SET messages = messages + excluded.messages;"""
        for table, group in totals.items()
    )


def _count_totals_from_scratch(totals: dict[str, str], conn) -> None:
    with conn.cursor() as cursor:
        for table, group in totals.items():
            columns = ", ".join(_group_columns(group, postgresql=conn.vendor == "postgresql"))
            cursor.execute(f"DELETE FROM {table}_delta")
            cursor.execute(f"DELETE FROM {table}")
            cursor.execute(
                f"INSERT INTO {table} ({group}, messages)"
                f" SELECT {columns}, count(*) FROM communication_log GROUP BY {columns}"
            )


def _counting_triggers(
    prefix: str, *, targets, sqlite_upsert, changed: tuple[str, ...], recount
) -> TriggerSet:
    """Triggers `{prefix}_*` keeping counts: on PostgreSQL appending each target's deltas
    (function `{prefix}_delta`), on SQLite `sqlite_upsert` per row when a `changed` column did."""
    function = f"{prefix}_delta"
    return TriggerSet(
        table="communication_log",
        prefix=prefix,
        function=function,
        postgres=[_pg_delta_function(function, targets), *_pg_statement_triggers(prefix, function)],
        sqlite=_sqlite_row_triggers(prefix, sqlite_upsert, changed),
        recount=recount,
    )


TOTAL_TRIGGERS = _counting_triggers(
    "communication_log_total",
    targets=_TOTAL_TARGETS,
    sqlite_upsert=partial(_sqlite_total_upserts, TOTALS),
    changed=("tenant_id", "user_id", "channel", "provider", "status", "status_detail"),
    recount=partial(_count_totals_from_scratch, TOTALS),
)
DAY_TOTAL_TRIGGERS = _counting_triggers(
    "communication_log_user_day",
    targets=_DAY_TARGETS,
    sqlite_upsert=partial(_sqlite_total_upserts, DAY_TOTALS),
    changed=("tenant_id", "user_id", "created_at"),
    recount=partial(_count_totals_from_scratch, DAY_TOTALS),
)


def uncount_rows_of(cursor, table: str) -> None:
    """Takes the logs of `table` out of every count (PostgreSQL): for a log partition about to
    be dropped, which no trigger sees. The caller holds writes to it back meanwhile."""
    for sql in _signed_inserts(_HOURLY_TARGETS + _TOTAL_TARGETS + _DAY_TARGETS, (-1, table)):
        cursor.execute(sql)


def recount_logs() -> None:
    """Rebuilds the counts (per hour, per user, per tenant, per user and day) from the log table.
    On PostgreSQL the log table is locked against writes (SHARE mode; reads go on) while it
    counts, so nothing changes between the count and the triggers taking over again: about two
    seconds per million logs."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE communication_log IN SHARE MODE")
        _count_from_scratch(connection)
        _count_totals_from_scratch(TOTALS, connection)
        _count_totals_from_scratch(DAY_TOTALS, connection)


def fold_log_counts() -> int:
    """Moves the deltas into LogCount and the totals (PostgreSQL; SQLite counts in place) and
    drops groups whose count came back to zero. Returns the number of deltas folded."""
    folded = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            folded = _fold_deltas(
                cursor, "communication_log_count", GROUP, ("messages", "latency_ms", "latency_messages")
            )
            for table, group in _EVERY_TOTAL.items():
                folded += _fold_deltas(cursor, table, group, ("messages",))
        cursor.execute("DELETE FROM communication_log_count WHERE messages = 0 AND latency_messages = 0")
        for table in _EVERY_TOTAL:
            cursor.execute(f"DELETE FROM {table} WHERE messages = 0")
    return folded


def _fold_deltas(cursor, table: str, group: str, values: tuple[str, ...]) -> int:
    """Moves `{table}_delta` into `table` with one DELETE … RETURNING: each delta counts once."""
    columns = f"{group}, {', '.join(values)}"
    cursor.execute(
        f"""
        WITH moved AS (DELETE FROM {table}_delta RETURNING {columns}),
        folded AS (
            INSERT INTO {table} AS c ({columns})
            SELECT {group}, {", ".join(f"sum({value})" for value in values)}
            FROM moved GROUP BY {group} ORDER BY {group}
            ON CONFLICT ({group}) DO UPDATE SET
                {", ".join(f"{value} = c.{value} + excluded.{value}" for value in values)}
        )
        SELECT count(*) FROM moved
        """
    )
    return cursor.fetchone()[0]
