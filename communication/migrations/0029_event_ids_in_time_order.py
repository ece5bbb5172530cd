from django.db import migrations


def reinstall(apps, schema_editor):
    """The events trigger function again, as communication.services.events writes it now
    (message events' ids begin with their time)."""
    from communication.services.events import install_event_triggers, remove_event_triggers

    remove_event_triggers(schema_editor)
    install_event_triggers(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("communication", "0028_log_count_status_index"),
    ]

    operations = [migrations.RunPython(reinstall, reinstall)]
