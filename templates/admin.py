import json

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from authms.admin_scoping import TenantScopedAdmin
from templates.models import Template
from templates.rendering import PLACEHOLDER


class TemplateForm(forms.ModelForm):
    sample_variables = forms.CharField(
        label=_("Sample variables"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"code": "123456"}'}),
        help_text=_("JSON object used only for the preview below; not saved."),
    )

    class Meta:
        model = Template
        fields = [
            "tenant",
            "code",
            "channel",
            "name",
            "is_active",
            "subject",
            "body",
            "sensitive",
            "provider_template_id",
        ]

    def clean_sample_variables(self):
        raw = self.cleaned_data["sample_variables"].strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError(_("Not valid JSON.")) from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise forms.ValidationError(_("Must be a JSON object of strings."))
        return value

    def clean_body(self):
        body = self.cleaned_data["body"]
        if "{{" in PLACEHOLDER.sub("", body):
            raise forms.ValidationError(
                _("A placeholder is malformed; write {{name}} with letters, digits and _.")
            )
        return body


@admin.register(Template)
class TemplateAdmin(TenantScopedAdmin):
    form = TemplateForm
    staff_can_edit = True
    list_display = ["code", "channel", "name", "is_active", "sensitive", "provider_template_id", "updated_at"]
    list_filter = ["channel", "is_active", "sensitive"]
    search_fields = ["code", "name", "=id"]
    fieldsets = [
        (None, {"fields": ["tenant", "code", "channel", "name", "is_active"]}),
        (_("Content"), {"fields": ["subject", "body", "sensitive", "provider_template_id"]}),
        (_("Preview"), {"fields": ["sample_variables"], "description": _("Updates as you type.")}),
    ]

    class Media:
        js = ["message_templates/template_preview.js"]
        css = {"all": ["message_templates/template_preview.css"]}
