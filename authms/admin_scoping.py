"""Tenant scoping for the admin: tenant admins see their tenant, platform admins see all."""

from functools import reduce

from django.contrib import admin


class TenantScopedAdmin(admin.ModelAdmin):
    """Filters every queryset by the staff member's tenant unless they are a platform admin.

    Which models and actions a tenant admin may use comes from Django permissions (the
    "Tenant admins" group, authms.roles); which rows, from this class. New rows land in
    the staff member's own tenant, and the tenant field is shown only to platform admins.
    `tenant_field` names the tenant id on the model (or through a relation: endpoint__tenant_id).
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

    def _hides_tenant(self, request) -> bool:
        return not request.user.is_superuser

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if self._hides_tenant(request):
            exclude.append(self.tenant_field.removesuffix("_id"))
        return exclude

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._hides_tenant(request):
            return fieldsets
        tenant = self.tenant_field.removesuffix("_id")
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != tenant]})
            for name, options in fieldsets
        ]

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        if not self._hides_tenant(request):
            return form_class
        tenant_field, tenant_id = self.tenant_field, request.user.tenant_id

        class OwnTenantForm(form_class):
            """Sets the tenant before model validation so unique constraints that include it are checked."""

            def _post_clean(self):
                setattr(self.instance, tenant_field, tenant_id)
                super()._post_clean()

            def _get_validation_exclusions(self):
                exclusions = super()._get_validation_exclusions()
                exclusions.discard(tenant_field.removesuffix("_id"))
                return exclusions

        return OwnTenantForm

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            setattr(obj, self.tenant_field, request.user.tenant_id)
        super().save_model(request, obj, form, change)

    def _in_scope(self, request, obj) -> bool:
        return (
            obj is None
            or request.user.is_superuser
            or reduce(getattr, self.tenant_field.split("__"), obj) == request.user.tenant_id
        )

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._in_scope(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._in_scope(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._in_scope(request, obj)


class ReadOnlyAdminMixin:
    """Records of what happened (logs, batches, notifications sent, audit rows): nobody adds,
    edits or deletes them in the admin, platform admins included; retention is a purge job's
    business, not a click's."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PlatformAdminOnly:
    """A model only platform admins see and edit (tenants, the price table)."""

    def _platform_admin_only(self, request, obj=None):
        return request.user.is_superuser

    has_module_permission = has_view_permission = _platform_admin_only
    has_add_permission = has_change_permission = has_delete_permission = _platform_admin_only
