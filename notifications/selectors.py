"""Reads of the inbox, always scoped to the caller's tenant and the caller."""

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from authms.api.booleans import parse_bool
from authms.errors import NotFoundError, ValidationError, unknown_value_message
from authms.models import User
from notifications.models import Notification, NotificationType, Priority


def _enum(params, name: str, allowed: list[str]) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in allowed:
        message = unknown_value_message(name, value, allowed)
        raise ValidationError.for_field(name, message)
    return value


def _inbox(user: User) -> QuerySet:
    return Notification.objects.filter(tenant_id=user.tenant_id, user=user)


def notification_list(*, user: User, params) -> QuerySet:
    queryset = _inbox(user)
    if parse_bool(params, "unread_only"):
        queryset = queryset.filter(is_read=False)
    if kind := _enum(params, "type", NotificationType.values):
        queryset = queryset.filter(type=kind)
    if priority := _enum(params, "priority", Priority.values):
        queryset = queryset.filter(priority=priority)
    return queryset


def notification_unread_count(*, user: User) -> int:
    return _inbox(user).filter(is_read=False).count()


def notification_get(*, user: User, notification_id: str) -> Notification:
    """The caller's own notification; anyone else's (or none) is the same 404."""
    notification = _inbox(user).filter(id=notification_id).first()
    if notification is None:
        raise NotFoundError(_("Notification not found."))
    return notification
