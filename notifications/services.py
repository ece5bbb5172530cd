"""Writes of the in-app inbox: `notify()` is the one way notifications are created.

Also marking read (one, or all in one UPDATE), deleting, and retention purging.
"""

import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from authms.api.cursor import older_than
from authms.errors import NotFoundError, ValidationError, unknown_value_message
from authms.ids import new_ids
from authms.iterables import chunked
from authms.models import User
from notifications.inbox_counts import hold_inboxes
from notifications.live import announce
from notifications.messages import render as render_message
from notifications.models import Notification, NotificationType, Priority

BATCH_SIZE = 1000
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
TITLE_MAX = Notification._meta.get_field("title").max_length
ACTION_URL_MAX = Notification._meta.get_field("action_url").max_length


def validate_action_url(url: str | None) -> str | None:
    """A relative path (`/security`) or an https URL; anything else (javascript:, data:, http:) is refused."""
    if url in (None, ""):
        return None
    if len(url) > ACTION_URL_MAX:
        raise ValidationError.for_field(
            "action_url", _("action_url is longer than %(max)d characters.") % {"max": ACTION_URL_MAX}
        )
    if url.startswith("/") and not url.startswith("//"):
        return url
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc:
        return url
    raise ValidationError.for_field(
        "action_url", _("action_url must be a relative path starting with / or an https:// URL.")
    )


def _validated(
    *, type: str, event_type: str, priority: str, title: str, action_url: str | None, metadata
) -> dict:
    if type not in NotificationType.values:
        raise ValidationError.for_field("type", unknown_value_message("type", type, NotificationType.values))
    if not EVENT_TYPE.match(event_type or ""):
        raise ValidationError.for_field(
            "event_type", _("event_type must be dotted lower-case words, e.g. status.incident.created.")
        )
    if priority not in Priority.values:
        raise ValidationError.for_field(
            "priority", unknown_value_message("priority", priority, Priority.values)
        )
    if not title or not title.strip():
        raise ValidationError.for_field("title", _("title is required."))
    if len(title) > TITLE_MAX:
        raise ValidationError.for_field(
            "title", _("title is longer than %(max)d characters.") % {"max": TITLE_MAX}
        )
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError.for_field("metadata", _("metadata must be an object."))
    return {
        "type": type,
        "event_type": event_type,
        "priority": priority,
        "title": title.strip(),
        "action_url": validate_action_url(action_url),
        "metadata": metadata or {},
    }


def audience_user_ids(
    *, tenant_id: str, user_ids: Iterable[str] | None = None, whole_tenant: bool = False
) -> Iterable[str]:
    """The active users a notification goes to; named users must all be in the tenant (else 404)."""
    if whole_tenant:
        return (
            User.objects.filter(tenant_id=tenant_id, is_active=True)
            .values_list("id", flat=True)
            .iterator(BATCH_SIZE)
        )
    wanted = list(dict.fromkeys(user_ids or []))
    if not wanted:
        raise ValidationError.for_field("user_ids", _("Name at least one user, or address the whole tenant."))
    found = set(
        User.objects.filter(tenant_id=tenant_id, id__in=wanted, is_active=True).values_list("id", flat=True)
    )
    missing = [user_id for user_id in wanted if user_id not in found]
    if missing:
        raise NotFoundError(
            _("No active user in this tenant with id: %(ids)s.") % {"ids": ", ".join(missing[:20])}
        )
    return wanted


def notify(
    *,
    tenant_id: str,
    user_ids: Iterable[str] | None = None,
    whole_tenant: bool = False,
    type: str,
    event_type: str,
    title: str,
    content: str = "",
    priority: str = Priority.MEDIUM,
    action_url: str | None = None,
    metadata: dict | None = None,
    template: str = "",
    params: dict | None = None,
) -> int:
    """Create one notification per user (named users, or every active user of the tenant).

    With a `template` of notifications.messages, `title` and `content` are rendered from it
    (in LANGUAGE_CODE for storage; readers get their own language). Rows are written with
    bulk_create, 1,000 per INSERT. Returns how many were created.
    """
    if template:
        with translation.override(settings.LANGUAGE_CODE):
            title, content = render_message(template, params or {})
    fields = _validated(
        type=type,
        event_type=event_type,
        priority=priority,
        title=title,
        action_url=action_url,
        metadata=metadata,
    )
    recipients = audience_user_ids(tenant_id=tenant_id, user_ids=user_ids, whole_tenant=whole_tenant)
    created = 0
    with transaction.atomic():
        for chunk in chunked(recipients, BATCH_SIZE):
            now = hold_inboxes(chunk)  # each user's notifications commit in created_at order
            Notification.objects.bulk_create(
                Notification(
                    id=notification_id,
                    tenant_id=tenant_id,
                    user_id=user_id,
                    content=content,
                    template=template,
                    params=params or {},
                    created_at=now,
                    **fields,
                )
                for notification_id, user_id in zip(new_ids("ntf", len(chunk)), chunk, strict=True)
            )
            announce(chunk)
            created += len(chunk)
    return created


def notify_tenant_admins(*, tenant_id: str, **notice) -> int:
    """`notify()` the tenant's active admins (the service's own notices: caps, webhooks);
    nobody to tell is not an error."""
    admins = list(
        User.objects.filter(tenant_id=tenant_id, is_staff=True, is_active=True).values_list("id", flat=True)
    )
    return notify(tenant_id=tenant_id, user_ids=admins, **notice) if admins else 0


def notification_mark_read(*, notification: Notification) -> Notification:
    """Idempotent: `read_at` is set the first time only."""
    if not notification.is_read:
        now = timezone.now()
        Notification.objects.filter(id=notification.id, is_read=False).update(is_read=True, read_at=now)
        notification.is_read, notification.read_at = True, now
        announce([notification.user_id])
    return notification


def _changed(user: User, updated: int) -> int:
    """Wake the user's live streams when an UPDATE of their inbox changed rows."""
    if updated:
        announce([user.id])
    return updated


def notifications_mark_all_read(*, user: User) -> int:
    return _changed(
        user,
        Notification.objects.filter(tenant_id=user.tenant_id, user=user, is_read=False).update(
            is_read=True, read_at=timezone.now()
        ),
    )


def notifications_mark_seen(*, user: User, up_to: Notification | None = None) -> int:
    """The bell was opened: everything not yet seen, up to the newest notification it showed
    (`up_to`; all when absent), is seen. Seen is not read: each item is read on its own."""
    unseen = Notification.objects.filter(tenant_id=user.tenant_id, user=user, seen_at__isnull=True)
    if up_to is not None:
        unseen = unseen.filter(older_than(up_to.created_at, up_to.id, inclusive=True))
    return _changed(user, unseen.update(seen_at=timezone.now()))


def notification_archive(*, notification: Notification, archived: bool = True) -> Notification:
    """Out of the inbox (and its counts) or back; idempotent."""
    when = (notification.archived_at or timezone.now()) if archived else None
    Notification.objects.filter(id=notification.id).update(archived_at=when)
    notification.archived_at = when
    announce([notification.user_id])
    return notification


def notifications_archive_read(*, user: User) -> int:
    return _changed(
        user,
        Notification.objects.filter(
            tenant_id=user.tenant_id, user=user, is_read=True, archived_at__isnull=True
        ).update(archived_at=timezone.now()),
    )


def notification_delete(*, notification: Notification) -> None:
    notification.delete()
    announce([notification.user_id])


def notifications_purge(*, older_than: datetime, include_unread: bool = False, batch_size: int = 5000) -> int:
    """Delete old notifications in small batches, so no statement holds locks for long."""
    queryset = Notification.objects.filter(created_at__lt=older_than)
    if not include_unread:
        queryset = queryset.filter(is_read=True)
    deleted = 0
    while True:
        ids = list(queryset.values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += Notification.objects.filter(id__in=ids).delete()[0]
