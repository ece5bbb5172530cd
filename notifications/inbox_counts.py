"""The inbox's maintained counts (InboxCount): unread and unseen per user, by database trigger.

A notification counts as unread while `is_read` is false and as unseen while `seen_at` is
null, and in neither once archived. Every write path (bulk_create of a tenant-wide notice,
mark-all-read's UPDATE, deletes, purges) goes through the triggers, in its own transaction.

- PostgreSQL: statement triggers over transition tables add one signed sum per user and
  statement, users in id order (one lock order, so concurrent statements cannot deadlock).
- SQLite: row triggers.

`recount_inbox()` rebuilds the counts from the table.
"""

from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from authms.triggers import TriggerSet

_UNREAD = "CASE WHEN {row}is_read = {false} AND {row}archived_at IS NULL THEN 1 ELSE 0 END"
_UNSEEN = "CASE WHEN {row}seen_at IS NULL AND {row}archived_at IS NULL THEN 1 ELSE 0 END"


def _signed(table: str, sign: int) -> str:
    return (
        f"SELECT user_id, {sign} * ({_UNREAD.format(row='', false='false')}) AS unread, "
        f"{sign} * ({_UNSEEN.format(row='')}) AS unseen FROM {table}"
    )


def _pg_apply(signed: str) -> str:
    return f"""
        INSERT INTO notifications_inbox_count AS c (user_id, unread, unseen)
        SELECT user_id, sum(unread), sum(unseen) FROM ({signed}) AS s
        GROUP BY user_id HAVING sum(unread) <> 0 OR sum(unseen) <> 0 ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET unread = c.unread + excluded.unread, unseen = c.unseen + excluded.unseen;
    """


_PG_TRIGGERS = [
    f"""
CREATE OR REPLACE FUNCTION notifications_inbox_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_pg_apply(_signed("new_rows", 1))}
    ELSIF TG_OP = 'UPDATE' THEN
        {_pg_apply(_signed("new_rows", 1) + " UNION ALL " + _signed("old_rows", -1))}
    ELSE
        {_pg_apply(_signed("old_rows", -1))}
    END IF;
    RETURN NULL;
END $$;
""",
    """CREATE TRIGGER notifications_inbox_count_insert AFTER INSERT ON notifications_notification
       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notifications_inbox_count_change()""",
    """CREATE TRIGGER notifications_inbox_count_update AFTER UPDATE ON notifications_notification
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION notifications_inbox_count_change()""",
    """CREATE TRIGGER notifications_inbox_count_delete AFTER DELETE ON notifications_notification
       REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION notifications_inbox_count_change()""",
]


def _sqlite_upsert(row: str, sign: int) -> str:
    unread, unseen = _UNREAD.format(row=row, false="0"), _UNSEEN.format(row=row)
    return f"""
        INSERT INTO notifications_inbox_count (user_id, unread, unseen)
        VALUES ({row}user_id, {sign} * ({unread}), {sign} * ({unseen}))
        ON CONFLICT (user_id) DO UPDATE SET unread = unread + excluded.unread, unseen = unseen + excluded.unseen;
    """


_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER notifications_inbox_count_insert AFTER INSERT ON notifications_notification
        BEGIN {_sqlite_upsert("NEW.", 1)} END""",
    f"""CREATE TRIGGER notifications_inbox_count_update AFTER UPDATE ON notifications_notification
        WHEN OLD.is_read IS NOT NEW.is_read OR OLD.seen_at IS NOT NEW.seen_at
          OR OLD.archived_at IS NOT NEW.archived_at OR OLD.user_id IS NOT NEW.user_id
        BEGIN {_sqlite_upsert("OLD.", -1)} {_sqlite_upsert("NEW.", 1)} END""",
    f"""CREATE TRIGGER notifications_inbox_count_delete AFTER DELETE ON notifications_notification
        BEGIN {_sqlite_upsert("OLD.", -1)} END""",
]


def _count_from_scratch(conn) -> None:
    false = "false" if conn.vendor == "postgresql" else "0"
    with conn.cursor() as cursor:
        cursor.execute("DELETE FROM notifications_inbox_count")
        cursor.execute(
            f"""
            INSERT INTO notifications_inbox_count (user_id, unread, unseen)
            SELECT user_id, sum({_UNREAD.format(row="", false=false)}), sum({_UNSEEN.format(row="")})
            FROM notifications_notification GROUP BY user_id
            """
        )


TRIGGERS = TriggerSet(
    table="notifications_notification",
    prefix="notifications_inbox_count",
    function="notifications_inbox_count_change",
    postgres=_PG_TRIGGERS,
    sqlite=_SQLITE_TRIGGERS,
    recount=_count_from_scratch,
)
install_triggers = TRIGGERS.install  # migrations 0002, 0003; counts what is already there
remove_triggers = TRIGGERS.remove


def recount_inbox() -> None:
    """Rebuilds every count; writes to the notification table wait meanwhile (PostgreSQL)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE notifications_notification IN SHARE MODE")
        _count_from_scratch(connection)


def hold_inboxes(user_ids: list[str]) -> datetime:
    """Lock these users' count rows (creating missing ones) until the transaction ends, in id
    order like the triggers, and answer the database's clock read after the locks are held.

    Stamping new notifications with that time makes each user's notifications commit in
    `created_at` order: whoever holds a user's row commits before the next writer can stamp.
    So a reader that has seen a notification has seen every older one of that user, and
    "everything after (created_at, id)" never skips a late commit (the live stream relies on it).
    """
    if connection.vendor == "postgresql":
        # The clock is read once the aggregate has consumed every locked row.
        lock = """
            WITH held AS (
                INSERT INTO notifications_inbox_count AS c (user_id, unread, unseen)
                SELECT user_id, 0, 0 FROM unnest(%s::varchar[]) AS user_id ORDER BY user_id
                ON CONFLICT (user_id) DO UPDATE SET unread = c.unread
                RETURNING 1
            )
            SELECT clock_timestamp() FROM (SELECT count(*) FROM held) AS locked
        """
        params = [sorted(user_ids)]
    else:  # one writer at a time: the first write takes the database's write lock
        lock = f"""
            INSERT INTO notifications_inbox_count (user_id, unread, unseen)
            VALUES {", ".join(["(%s, 0, 0)"] * len(user_ids))}
            ON CONFLICT (user_id) DO UPDATE SET unread = unread
        """
        params = sorted(user_ids)
    with connection.cursor() as cursor:
        cursor.execute(lock, params)
        if connection.vendor == "postgresql":
            return cursor.fetchone()[0]
    return timezone.now()
