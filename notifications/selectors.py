"""Reads of the inbox, always scoped to the caller's tenant and the caller."""

from datetime import UTC, datetime

from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from authms.api.booleans import parse_bool
from authms.api.cursor import newer_than
from authms.compiled_queries import CompiledLookup
from authms.errors import NotFoundError, ValidationError, unknown_value_message
from authms.models import User
from notifications.models import InboxCount, Notification, NotificationType, Priority


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


STATUSES = ["unread", "read", "unseen", "archived", "all"]
_STATUS_FILTERS = {
    None: Q(archived_at__isnull=True),  # the default: everything but the archive
    "unread": Q(is_read=False, archived_at__isnull=True),
    "read": Q(is_read=True, archived_at__isnull=True),
    "unseen": Q(seen_at__isnull=True, archived_at__isnull=True),
    "archived": Q(archived_at__isnull=False),
    "all": Q(),
}


def notification_list(*, user: User, params) -> QuerySet:
    queryset = _inbox(user).filter(_STATUS_FILTERS[_enum(params, "status", STATUSES)])
    if parse_bool(params, "unread_only"):
        queryset = queryset.filter(is_read=False)
    if kind := _enum(params, "type", NotificationType.values):
        queryset = queryset.filter(type=kind)
    if priority := _enum(params, "priority", Priority.values):
        queryset = queryset.filter(priority=priority)
    return queryset


def _inbox_count(column: str) -> Coalesce:
    row = InboxCount.objects.filter(user_id=OuterRef("id")).values(column)
    return Coalesce(Subquery(row), Value(0))


_user_with_inbox_counts = CompiledLookup(
    lambda user_id: User.objects.by_id_with_tenant(user_id).annotate(
        inbox_unread=_inbox_count("unread"), inbox_unseen=_inbox_count("unseen")
    )
)


def user_with_inbox_counts(user_id: str) -> User | None:
    """The user and tenant authentication loads, with the badge's counts in the same query."""
    return _user_with_inbox_counts.first(user_id)


def notification_counts(*, user: User) -> dict[str, int]:
    """Unread and unseen (archived ones in neither): one row the triggers keep, at any inbox size."""
    if hasattr(user, "inbox_unread"):  # loaded with the user (UnreadCountView)
        return {"unread": user.inbox_unread, "unseen": user.inbox_unseen}
    with connection.cursor() as cursor:
        cursor.execute("SELECT unread, unseen FROM notifications_inbox_count WHERE user_id = %s", [user.id])
        row = cursor.fetchone()
    return {"unread": row[0], "unseen": row[1]} if row else {"unread": 0, "unseen": 0}


def notification_get(*, user: User, notification_id: str) -> Notification:
    """The caller's own notification; anyone else's (or none) is the same 404."""
    notification = _inbox(user).filter(id=notification_id).first()
    if notification is None:
        raise NotFoundError(_("Notification not found."))
    return notification


Position = tuple[datetime, str]  # (created_at, id): where a reader is in an inbox's order


def newest_position(*, user: User) -> Position:
    """Where a fresh live stream starts: after the newest notification there is now."""
    newest = _inbox(user).order_by("-created_at", "-id").values_list("created_at", "id").first()
    return newest or (datetime.min.replace(tzinfo=UTC), "")


def notifications_after(*, user: User, after: Position, limit: int) -> list[Notification]:
    """Unarchived notifications after `after`, oldest first. Gap-free for a reader who moves
    `after` along: each user's notifications commit in this order (inbox_counts.hold_inboxes)."""
    return list(
        _inbox(user).filter(newer_than(*after), archived_at__isnull=True).order_by("created_at", "id")[:limit]
    )


_AFTER_EACH = """
    SELECT n.*, reader.ord AS reader
    FROM unnest(%s::varchar[], %s::varchar[], %s::timestamptz[], %s::varchar[])
         WITH ORDINALITY AS reader(tenant_id, user_id, created_at, id, ord)
    CROSS JOIN LATERAL (
        SELECT * FROM notifications_notification AS n
        WHERE n.tenant_id = reader.tenant_id AND n.user_id = reader.user_id AND n.archived_at IS NULL
          AND (n.created_at, n.id) > (reader.created_at, reader.id)
        ORDER BY n.created_at, n.id LIMIT %s
    ) AS n
    ORDER BY reader.ord, n.created_at, n.id
"""


def notifications_after_each(readers: list[tuple[User, Position]], *, limit: int) -> list[list[Notification]]:
    """`notifications_after` for many readers at once (streams woken by one tenant-wide notice):
    one query on PostgreSQL, each reader's rows scoped to their tenant and themselves."""
    if connection.vendor != "postgresql":
        return [notifications_after(user=user, after=after, limit=limit) for user, after in readers]
    columns = [
        [user.tenant_id for user, _after in readers],
        [user.id for user, _after in readers],
        [after[0] for _user, after in readers],
        [after[1] for _user, after in readers],
    ]
    found: list[list[Notification]] = [[] for _reader in readers]
    for row in Notification.objects.raw(_AFTER_EACH, [*columns, limit]):
        found[row.reader - 1].append(row)
    return found


def notification_counts_each(users: list[User]) -> list[dict[str, int]]:
    rows = InboxCount.objects.filter(user_id__in={user.id for user in users}).values(
        "user_id", "unread", "unseen"
    )
    by_user = {row.pop("user_id"): row for row in rows}
    return [by_user.get(user.id, {"unread": 0, "unseen": 0}) for user in users]
