"""Every counting and outbox trigger exists after the migrations, on both databases (SQLite
drops a table's triggers when a migration rebuilds the table to change it)."""

from django.db import connection

EXPECTED = {
    "communication_log": {
        "communication_log_count_insert", "communication_log_count_update", "communication_log_count_delete",
        "communication_log_total_insert", "communication_log_total_update", "communication_log_total_delete",
        "communication_log_user_day_insert", "communication_log_user_day_update", "communication_log_user_day_delete",
        "communication_log_event_insert", "communication_log_event_update",
    },
    "notifications_notification": {
        "notifications_inbox_count_insert", "notifications_inbox_count_update", "notifications_inbox_count_delete",
    },
}  # fmt: skip


def installed(table: str) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [table]
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
        return {row[0] for row in cursor.fetchall()}


def test_every_trigger_is_installed(db):
    for table, names in EXPECTED.items():
        assert installed(table) == names, table


def test_each_trigger_set_removes_and_reinstalls_itself(db):
    """What the migrations' reverse and forward steps do (authms.triggers.TriggerSet)."""
    from types import SimpleNamespace

    from communication.services import events, log_counts
    from notifications import inbox_counts

    with connection.cursor() as cursor:
        editor = SimpleNamespace(connection=connection, execute=lambda sql, params: cursor.execute(sql))
        for triggers in (
            log_counts.TRIGGERS,
            log_counts.TOTAL_TRIGGERS,
            log_counts.DAY_TOTAL_TRIGGERS,
            events.TRIGGERS,
            inbox_counts.TRIGGERS,
        ):
            triggers.remove(editor)
            assert not installed(triggers.table) & set(triggers.names), triggers.function
            triggers.install(editor)
            assert installed(triggers.table) >= set(triggers.names), triggers.function
    test_every_trigger_is_installed(db)
