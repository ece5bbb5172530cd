from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from authms.admin_scoping import TenantScopedAdmin
from authms.models import Tenant, User


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "id", "is_active", "created_at"]
    search_fields = ["name", "slug", "id"]
    prepopulated_fields = {"slug": ["name"]}

    def _platform_admin_only(self, request, obj=None):
        return request.user.is_superuser

    has_module_permission = has_view_permission = _platform_admin_only
    has_add_permission = has_change_permission = has_delete_permission = _platform_admin_only


@admin.register(User)
class UserAdmin(TenantScopedAdmin, DjangoUserAdmin):
    list_display = ["username", "email", "tenant", "is_staff", "is_superuser", "is_active"]
    list_filter = ["is_staff", "is_active"]
    list_select_related = ["tenant"]
    search_fields = ["username", "email", "id"]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("Tenant"), {"fields": ("tenant", "phone")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("tenant", "username", "email", "password1", "password2")}),
    )
