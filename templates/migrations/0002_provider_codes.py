from django.db import migrations, models


def codes_from_template_ids(apps, schema_editor):
    """The one provider template id there was belonged to SUBMAIL (a project id)."""
    Template = apps.get_model("message_templates", "Template")
    for template in Template.objects.exclude(provider_template_id=""):
        template.provider_codes = {"submail": template.provider_template_id}
        template.save(update_fields=["provider_codes"])


def template_ids_from_codes(apps, schema_editor):
    Template = apps.get_model("message_templates", "Template")
    for template in Template.objects.exclude(provider_codes={}):
        template.provider_template_id = template.provider_codes.get("submail", "")
        template.save(update_fields=["provider_template_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("message_templates", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="template",
            name="provider_codes",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='The approved template at each provider, sent instead of the text: e.g. {"submail": "abc12", "aliyun": "SMS_123"}. Providers that send templates only (Aliyun) need one.',
                verbose_name="provider template codes",
            ),
        ),
        migrations.RunPython(codes_from_template_ids, template_ids_from_codes),
        migrations.RemoveField(model_name="template", name="provider_template_id"),
    ]
