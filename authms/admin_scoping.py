"""Tenant scoping for the admin: tenant admins see their tenant, platform admins see all."""

from django.contrib import admin


class TenantScopedAdmin(admin.ModelAdmin):
    """Filters every queryset by the staff member's tenant unless they are a platform admin.

    `tenant_field` names the path to the tenant id on the model (e.g. `tenant_id`).
    """

    tenant_field = "tenant_id"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{self.tenant_field: request.user.tenant_id})

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser:
            filters.append(self.tenant_field.removesuffix("_id"))
        return filters

    def has_view_permission(self, request, obj=None):
        # Every staff member is a tenant admin of their own tenant (API.md roles).
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return self.has_view_permission(request)
