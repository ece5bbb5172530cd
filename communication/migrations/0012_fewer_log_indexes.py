"""communication_log had 19 indexes, and every send and every delivery report writes each of
them. Dropped: the tenant FK's own index (every composite index leads with tenant) and the
`varchar_pattern_ops` twins Django adds for character keys, which serve only LIKE 'x%'
queries that nothing runs on ids. The user and template FK indexes stay (deleting a user or
a template looks its logs up by them)."""

import django.db.models.deletion
from django.db import migrations, models

PATTERN_INDEXES = """
    SELECT indexname FROM pg_indexes
    WHERE tablename = 'communication_log' AND indexdef LIKE '%%varchar_pattern_ops%%'
"""


def drop_pattern_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite has no such indexes
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(PATTERN_INDEXES)
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY: sending goes on meanwhile

    dependencies = [
        ("authms", "0005_tenant_sms_providers"),
        ("communication", "0011_undelivered_health"),
    ]

    operations = [
        migrations.AlterField(
            model_name="communicationlog",
            name="tenant",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="authms.tenant",
                verbose_name="tenant",
            ),
        ),
        # Not reversed: the indexes served no query; a rollback simply goes without them.
        migrations.RunPython(drop_pattern_indexes, migrations.RunPython.noop),
    ]
