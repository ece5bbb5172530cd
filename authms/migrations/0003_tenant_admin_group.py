from django.db import migrations

from authms.roles import tenant_admin_group_repair


class Migration(migrations.Migration):
    dependencies = [
        ("authms", "0002_idempotencykey"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("communication", "0004_log_retry_of"),
        ("message_templates", "0001_initial"),
        ("notifications", "0001_initial"),
    ]

    operations = [migrations.RunPython(tenant_admin_group_repair, migrations.RunPython.noop)]
