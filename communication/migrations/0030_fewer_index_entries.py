"""Fewer index entries per status change (#13: the bulk paths are bound by PostgreSQL's writes).

A status change cannot be a HOT update, so it writes a new entry into every index whose
condition the row meets. Pending logs have no provider message id and most logs no template:
those two indexes become partial (IS NOT NULL). Events are inserted without a position (the
sequencer gives it later): the feed indexes and the position's uniqueness cover sequenced
events only, and the `varchar_pattern_ops` twin Django adds for the unique `id` (LIKE 'x%'
only, which nothing runs) goes, as the log table's did in 0012.

On PostgreSQL the new indexes are built without holding writes back (sending goes on): the log
table's as PostgreSQL documents for a partitioned table (the parent's index ON ONLY, each
partition's CONCURRENTLY, attached one by one), the events table's CONCURRENTLY; each old index
is dropped once its replacement is valid. SQLite (the embedded run) applies the plain operations.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

LOG_INDEXES = [  # (old name, new name, columns, condition)
    (
        "log_provider_message_id",
        "log_provider_message_id",
        "provider_message_id",
        "provider_message_id IS NOT NULL",
    ),
    ("communication_log_template_id_3d63cba2", "log_template", "template_id", "template_id IS NOT NULL"),
]
EVENT_INDEXES = [  # (old name or constraint, new name, unique, columns)
    ("event_tenant_feed", "event_tenant_feed", False, '(tenant_id, "position")'),
    ("event_user_feed", "event_user_feed", False, '(tenant_id, user_id, "position")'),
    ("communication_event_position_key", "event_position", True, '("position")'),
]


def build_indexes_concurrently(apps, schema_editor):
    from communication.services.log_partitions import PARENT, log_partitions

    with schema_editor.connection.cursor() as cursor:
        for old, new, columns, condition in LOG_INDEXES:
            parent, parts = f"{new}_new", []
            cursor.execute(f'DROP INDEX IF EXISTS "{parent}"')  # half built by a run stopped halfway
            if _partial_index_exists(cursor, new):
                continue  # built by a run stopped later on
            cursor.execute(f'CREATE INDEX "{parent}" ON ONLY {PARENT} ({columns}) WHERE {condition}')
            for partition, _start, _end in log_partitions():
                part = f"{new}_{partition.removeprefix(PARENT + '_')}"[:55] + "_new"
                cursor.execute(f'DROP INDEX IF EXISTS "{part}"')
                cursor.execute(
                    f'CREATE INDEX CONCURRENTLY "{part}" ON "{partition}" ({columns}) WHERE {condition}'
                )
                cursor.execute(f'ALTER INDEX "{parent}" ATTACH PARTITION "{part}"')
                parts.append(part)
            cursor.execute(f'DROP INDEX IF EXISTS "{old}"')  # the parent's, with its partitions'
            cursor.execute(f'ALTER INDEX "{parent}" RENAME TO "{new}"')
            for part in parts:
                cursor.execute(f'ALTER INDEX "{part}" RENAME TO "{part.removesuffix("_new")}"')
        for old, new, unique, columns in EVENT_INDEXES:
            cursor.execute(f'DROP INDEX IF EXISTS "{new}_new"')
            if _partial_index_exists(cursor, new):
                continue
            cursor.execute(
                f'CREATE {"UNIQUE " if unique else ""}INDEX CONCURRENTLY "{new}_new" '
                f'ON communication_event {columns} WHERE "position" IS NOT NULL'
            )
            if unique:
                cursor.execute(f'ALTER TABLE communication_event DROP CONSTRAINT IF EXISTS "{old}"')
            else:
                cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{old}"')
            cursor.execute(f'ALTER INDEX "{new}_new" RENAME TO "{new}"')


def _partial_index_exists(cursor, name: str) -> bool:
    cursor.execute("SELECT indexdef LIKE '%% WHERE %%' FROM pg_indexes WHERE indexname = %s", [name])
    row = cursor.fetchone()
    return bool(row and row[0])


class ConcurrentlyOnPostgreSQL(migrations.SeparateDatabaseAndState):
    """The operations as they are, except forwards on PostgreSQL: `postgresql` (RunPython) does
    the same to the database there without holding writes back."""

    def __init__(self, operations, postgresql):
        super().__init__(state_operations=operations, database_operations=operations)
        self.postgresql = postgresql

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            self.postgresql.database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            super().database_forwards(app_label, schema_editor, from_state, to_state)


def drop_event_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite has no such indexes
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'communication_event' "
            "AND indexdef LIKE '%%varchar_pattern_ops%%'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def _sqlite_log_triggers():
    from communication.services import events, log_counts

    return (log_counts.TRIGGERS, log_counts.TOTAL_TRIGGERS, log_counts.DAY_TOTAL_TRIGGERS, events.TRIGGERS)


def remove_sqlite_log_triggers(apps, schema_editor):
    """SQLite alters a column by copying its table into a new one, and renaming a table fails
    while another table's trigger names it: the log table's triggers come off around the
    changes and go back on after (the rows are copied uncounted, so the counts stand)."""
    if schema_editor.connection.vendor != "postgresql":
        for triggers in _sqlite_log_triggers():
            triggers.remove(schema_editor)


def install_sqlite_log_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        for triggers in _sqlite_log_triggers():
            triggers.install(schema_editor, recount=False)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY

    dependencies = [
        ("authms", "0009_user_manager"),
        ("communication", "0029_event_ids_in_time_order"),
        ("message_templates", "0004_template_category"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(remove_sqlite_log_triggers, install_sqlite_log_triggers),
        ConcurrentlyOnPostgreSQL(
            [
                migrations.RemoveIndex(
                    model_name="communicationlog",
                    name="log_provider_message_id",
                ),
                migrations.RemoveIndex(
                    model_name="event",
                    name="event_tenant_feed",
                ),
                migrations.RemoveIndex(
                    model_name="event",
                    name="event_user_feed",
                ),
                migrations.AlterField(
                    model_name="communicationlog",
                    name="template",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="message_templates.template",
                        verbose_name="template",
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="position",
                    field=models.BigIntegerField(null=True, verbose_name="position"),
                ),
                migrations.AddIndex(
                    model_name="communicationlog",
                    index=models.Index(
                        condition=models.Q(("provider_message_id__isnull", False)),
                        fields=["provider_message_id"],
                        name="log_provider_message_id",
                    ),
                ),
                migrations.AddIndex(
                    model_name="communicationlog",
                    index=models.Index(
                        condition=models.Q(("template__isnull", False)),
                        fields=["template"],
                        name="log_template",
                    ),
                ),
                migrations.AddIndex(
                    model_name="event",
                    index=models.Index(
                        condition=models.Q(("position__isnull", False)),
                        fields=["tenant_id", "position"],
                        name="event_tenant_feed",
                    ),
                ),
                migrations.AddIndex(
                    model_name="event",
                    index=models.Index(
                        condition=models.Q(("position__isnull", False)),
                        fields=["tenant_id", "user_id", "position"],
                        name="event_user_feed",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="event",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("position__isnull", False)),
                        fields=("position",),
                        name="event_position",
                    ),
                ),
            ],
            migrations.RunPython(build_indexes_concurrently),
        ),
        # Not reversed: the index served no query; a rollback simply goes without it.
        migrations.RunPython(drop_event_pattern_index, migrations.RunPython.noop),
        migrations.RunPython(install_sqlite_log_triggers, remove_sqlite_log_triggers),
    ]
