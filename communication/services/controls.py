"""A tenant's delivery controls over the API: sending caps, quiet hours, preference defaults."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from authms.audit import staff_action_record
from authms.errors import PermissionDeniedError, ValidationError
from authms.models import Tenant, User

CONTROL_FIELDS = ("send_caps", "time_zone", "quiet_hours", "preference_defaults")
# The caps protect the platform and its gateways' accounts: a tenant does not raise its own.
PLATFORM_ONLY = frozenset({"send_caps"})


def delivery_controls_update(*, actor: User, tenant: Tenant, changes: dict) -> Tenant:
    """Validate the changed fields with the model's own rules and store them whole or not at
    all; who changed what is kept in the staff actions log."""
    if not actor.is_platform_admin and PLATFORM_ONLY & changes.keys():
        raise PermissionDeniedError(_("Only platform admins may change a tenant's sending caps."))
    for name, value in changes.items():
        setattr(tenant, name, value)
    try:
        tenant.full_clean(exclude=[field.name for field in Tenant._meta.fields if field.name not in changes])
    except DjangoValidationError as error:
        errors = error.message_dict
        raise ValidationError(
            "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()), errors=errors
        ) from None
    with transaction.atomic():
        tenant.save(update_fields=list(changes))
        staff_action_record(
            actor=actor,
            action="Changed delivery controls: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()),
            objects=[tenant],
        )
    return tenant
