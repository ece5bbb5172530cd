"""The tenant-admin role as a Django group, so staff get their permissions from one place.

Tenant scoping (which rows) is the admin's job (TenantScopedAdmin); this group says which
models and actions. Platform admins are superusers and need no group.
"""

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

TENANT_ADMINS = "Tenant admins"
PERMISSIONS = {
    "communication": {
        "communicationlog": ["view"],
        "batch": ["view"],
        "suppression": ["view", "add", "change", "delete"],
        "suppressionlift": ["view"],
        "device": ["view", "delete"],
        "preference": ["view"],
        "webhookendpoint": ["view", "add", "change", "delete"],
        "webhookdelivery": ["view"],
    },
    "message_templates": {"template": ["view", "add", "change", "delete"]},
    "notifications": {"notification": ["view"]},
    "authms": {"user": ["view", "add", "change"]},
}


def tenant_admin_group() -> Group:
    """Create (or repair) the group with exactly its permissions; safe to call any time."""
    group, _ = Group.objects.get_or_create(name=TENANT_ADMINS)
    wanted = [
        (app_label, f"{action}_{model}")
        for app_label, models in PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    ]
    permissions = [
        permission
        for permission in Permission.objects.filter(
            codename__in=[codename for _, codename in wanted]
        ).select_related("content_type")
        if (permission.content_type.app_label, permission.codename) in wanted
    ]
    group.permissions.set(permissions)
    return group


def tenant_admin_group_repair(*_migration_args) -> Group:
    """For migrations (as a RunPython function): Django creates permissions only after all
    migrations ran, so create them first, then bring the group up to PERMISSIONS."""
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    return tenant_admin_group()


def make_tenant_admin(user) -> None:
    user.groups.add(tenant_admin_group())
