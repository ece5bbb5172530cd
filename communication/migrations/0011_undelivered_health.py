from django.db import migrations, models

from authms.migration_operations import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False  # the index is built CONCURRENTLY on PostgreSQL

    dependencies = [
        ("communication", "0010_provider_health"),
    ]

    operations = [
        migrations.AddField(
            model_name="providerhealth",
            name="cause",
            field=models.CharField(
                blank=True,
                choices=[("calls", "failing or slow calls"), ("delivery", "accepted messages not reported delivered")],
                max_length=10,
                verbose_name="cause",
            ),
        ),
        AddIndexOnline(
            model_name="communicationlog",
            index=models.Index(
                condition=models.Q(("status", "sent")), fields=["provider", "sent_at"], name="log_awaiting_report"
            ),
        ),
    ]
