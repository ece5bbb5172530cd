from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_group(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now so the group can hold them.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    from authms.roles import tenant_admin_group

    tenant_admin_group()


class Migration(migrations.Migration):
    dependencies = [
        ("authms", "0002_idempotencykey"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("communication", "0004_log_retry_of"),
        ("message_templates", "0001_initial"),
        ("notifications", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
