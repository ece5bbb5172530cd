from django import forms
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from authms.admin_scoping import PlatformAdminOnly, ReadOnlyAdminMixin, TenantScopedAdmin
from authms.models import Tenant, User
from authms.roles import make_tenant_admin


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = [
            "name",
            "slug",
            "is_active",
            "sms_providers",
            "send_caps",
            "time_zone",
            "quiet_hours",
            "preference_defaults",
            "language",
        ]

    def clean_sms_providers(self):
        from providers.registry import channel_route

        names = [name.strip() for name in self.cleaned_data["sms_providers"].split(",") if name.strip()]
        allowed = channel_route("sms")
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise forms.ValidationError(
                _("Not on this deployment's SMS route (%(allowed)s): %(names)s.")
                % {"allowed": ", ".join(allowed), "names": ", ".join(unknown)}
            )
        if len(set(names)) != len(names):
            raise forms.ValidationError(_("Name each provider once."))
        return ",".join(names)


@admin.register(Tenant)
class TenantAdmin(PlatformAdminOnly, admin.ModelAdmin):
    form = TenantForm
    list_display = ["name", "slug", "id", "is_active", "sms_providers", "created_at"]
    search_fields = ["name", "slug", "id"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active", "sms_providers"]}),
        (
            _("Delivery controls"),
            {"fields": ["send_caps", "time_zone", "quiet_hours", "preference_defaults", "language"]},
        ),
    ]


@admin.register(User)
class UserAdmin(TenantScopedAdmin, DjangoUserAdmin):
    list_display = ["username", "email", "tenant", "is_staff", "is_superuser", "is_active"]
    list_filter = ["is_staff", "is_active"]
    list_select_related = ["tenant"]
    search_fields = ["username", "email", "id"]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("Tenant"), {"fields": ("tenant", "phone")}),
        (_("Delivery"), {"fields": ("time_zone", "quiet_hours", "language")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("tenant", "username", "email", "password1", "password2")}),
    )
    PLATFORM_ONLY_FIELDS = ("is_superuser", "groups", "user_permissions")

    def get_fieldsets(self, request, obj=None):
        """Tenant admins manage their people but cannot grant platform rights or raw permissions."""
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [
            (
                name,
                {**options, "fields": [f for f in options["fields"] if f not in self.PLATFORM_ONLY_FIELDS]},
            )
            for name, options in fieldsets
        ]

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.is_staff and not obj.is_superuser:
            make_tenant_admin(obj)


@admin.register(LogEntry)
class StaffActionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail of staff actions (authms/audit.py): every add, change and delete in the
    console and its own actions (retry, sync now, notices sent, suppressions lifted).
    Platform admins only, read-only."""

    list_display = ["action_time", "user", "action_flag", "content_type", "object_repr", "message"]
    list_filter = ["action_flag", "content_type"]
    search_fields = ["=object_id", "object_repr", "change_message", "=user__username"]
    list_select_related = ["user", "content_type"]
    date_hierarchy = "action_time"

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    @admin.display(description=_("what"))
    def message(self, entry):
        return entry.get_change_message()
