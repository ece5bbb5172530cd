import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from authms.admin_scoping import TenantScopedAdmin
from authms.errors import ApplicationError
from authms.models import User
from communication.channels import channel_spec
from communication.models import CommunicationLog, Status
from communication.services import bulk_send_now
from templates.models import Template
from templates.rendering import PLACEHOLDER, placeholders


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
            "category",
            "provider_codes",
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

    def clean_provider_codes(self):
        codes = self.cleaned_data["provider_codes"] or {}
        if not isinstance(codes, dict) or not all(
            isinstance(name, str) and isinstance(code, str) and code.strip() for name, code in codes.items()
        ):
            raise forms.ValidationError(
                _('Must be a JSON object of provider name to code, e.g. {"aliyun": "SMS_123"}.')
            )
        unknown = sorted(set(codes) - set(settings.COMMUNICATION_PROVIDERS))
        if unknown:
            raise forms.ValidationError(_("Unknown provider: %(names)s.") % {"names": ", ".join(unknown)})
        return {name: code.strip() for name, code in codes.items()}

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
    actions = ["send_test_message"]
    list_display = [
        "code",
        "channel",
        "name",
        "category",
        "is_active",
        "sensitive",
        "provider_codes",
        "updated_at",
    ]
    list_filter = ["channel", "category", "is_active", "sensitive"]
    search_fields = ["code", "name", "=id"]
    fieldsets = [
        (None, {"fields": ["tenant", "code", "channel", "name", "category", "is_active"]}),
        (_("Content"), {"fields": ["subject", "body", "sensitive", "provider_codes"]}),
        (_("Preview"), {"fields": ["sample_variables"], "description": _("Updates as you type.")}),
    ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        template = self.get_queryset(request).filter(pk=object_id).only("tenant_id").first()
        if template is not None and request.method == "GET":  # only a template this staff member may see
            pending = CommunicationLog.objects.filter(
                tenant_id=template.tenant_id, template_id=template.pk, status=Status.PENDING
            ).count()
            if pending:
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d pending message uses this template; it goes out with the text it was created with.",
                        "%(count)d pending messages use this template; they go out with the text they were created with.",
                        pending,
                    )
                    % {"count": pending},
                    messages.WARNING,
                )
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Send a test message to my own phone or email"))
    def send_test_message(self, request, queryset):
        """Through the real pipeline, so the staff member sees exactly what recipients get."""
        for template in queryset:
            address_field = channel_spec(template.channel).user_address_field
            recipient = getattr(request.user, address_field)
            if not recipient:
                field = User._meta.get_field(address_field).verbose_name
                self.message_user(
                    request, _("Add your %(field)s to your user first.") % {"field": field}, messages.WARNING
                )
                continue
            sample = {name: f"<{name}>" for name in placeholders(template.subject, template.body)}
            try:
                result = bulk_send_now(
                    actor=request.user,
                    channel=template.channel,
                    recipients=[recipient],
                    template=template.code,
                    variables=sample,
                )
            except ApplicationError as exc:
                self.message_user(request, f"{template.code}: {exc.message}", messages.ERROR)
                continue
            self.message_user(
                request,
                _("Test of %(code)s queued to %(recipient)s (batch %(batch)s).")
                % {"code": template.code, "recipient": recipient, "batch": result.batch.id},
                messages.SUCCESS,
            )

    class Media:
        js = ["message_templates/template_preview.js"]
        css = {"all": ["message_templates/template_preview.css"]}
