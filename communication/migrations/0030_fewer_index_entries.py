"""Fewer index entries per status change (#13: the bulk paths are bound by PostgreSQL's writes).

A status change cannot be a HOT update, so it writes a new entry into every index whose
condition the row meets. Pending logs have no provider message id and most logs no template:
those two indexes become partial (IS NOT NULL). Events are inserted without a position (the
sequencer gives it later): the feed indexes and the position's uniqueness cover sequenced
events only, and the `varchar_pattern_ops` twin Django adds for the unique `id` (LIKE 'x%'
only, which nothing runs) goes, as the log table's did in 0012.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


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


def reinstall_sqlite_log_triggers(apps, schema_editor):
    """SQLite alters a column by copying the table into a new one, which drops its triggers:
    the log table's go back on (the rows were copied uncounted, so the counts stand)."""
    if schema_editor.connection.vendor == "postgresql":
        return
    from communication.services import events, log_counts

    for triggers in (
        log_counts.TRIGGERS,
        log_counts.TOTAL_TRIGGERS,
        log_counts.DAY_TOTAL_TRIGGERS,
        events.TRIGGERS,
    ):
        triggers.remove(schema_editor)
        triggers.install(schema_editor, recount=False)


class Migration(migrations.Migration):
    dependencies = [
        ("authms", "0009_user_manager"),
        ("communication", "0029_event_ids_in_time_order"),
        ("message_templates", "0004_template_category"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
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
                condition=models.Q(("template__isnull", False)), fields=["template"], name="log_template"
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
                condition=models.Q(("position__isnull", False)), fields=("position",), name="event_position"
            ),
        ),
        # Not reversed: the index served no query; a rollback simply goes without it.
        migrations.RunPython(drop_event_pattern_index, migrations.RunPython.noop),
        migrations.RunPython(reinstall_sqlite_log_triggers, reinstall_sqlite_log_triggers),
    ]
