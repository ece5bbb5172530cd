"""Reading the events feed: who sees which events, and the opaque cursor over positions."""

import base64
import binascii
import json

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from authms.errors import GoneError, NotFoundError, ValidationError
from authms.models import User
from communication.models import Event, EventSequence

FEED_LIMIT = 100
_CURSOR_PREFIX = "e1:"


def cursor_for(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{position}".encode()).decode().rstrip("=")


def position_of(cursor: str) -> int:
    """A cursor's position; 400 for anything we did not hand out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        text = ""
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit() or len(number) > 18:
        raise ValidationError.for_field("after", _("Not a cursor of this feed; start without one."))
    return int(number)


def visible_events(*, actor: User, tenant_id: str | None = None) -> QuerySet:
    """Sequenced events the caller may read: a user their own messages' and batches'; a tenant
    admin the tenant's; a platform admin any tenant's (`tenant_id`), or every event, platform
    ones included."""
    events = Event.objects.filter(position__isnull=False)
    if actor.is_platform_admin:
        return events.filter(tenant_id=tenant_id) if tenant_id else events
    if tenant_id and tenant_id != actor.tenant_id:
        raise NotFoundError(_("No tenant %(id)r.") % {"id": tenant_id})
    events = events.filter(tenant_id=actor.tenant_id)
    return events if actor.is_tenant_admin else events.filter(user_id=actor.id)


def feed_page(*, actor: User, after: str | None, types: list[str], limit: int, tenant_id: str | None) -> dict:
    """Events after the cursor, oldest first; `next_cursor` continues from the last one listed
    (or stays put when there was none). A cursor from before the retention's purge → 410."""
    position = position_of(after) if after else 0
    purged = EventSequence.objects.filter(pk=1).values_list("purged_through", flat=True).first() or 0
    if after and position < purged:
        raise GoneError(
            _("Events before this cursor were purged (kept 30 days); resync from the logs and start anew.")
        )
    unknown = sorted(set(types) - set(Event.Type.values))
    if unknown:
        raise ValidationError.for_field(
            "type", _("Unknown event type %(types)s; allowed: %(allowed)s.")
            % {"types": ", ".join(unknown), "allowed": ", ".join(Event.Type.values)},
        )  # fmt: skip
    events = visible_events(actor=actor, tenant_id=tenant_id).filter(position__gt=position)
    if types:
        events = events.filter(type__in=types)
    rows = list(events.order_by("position").values_list("position", "body")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [json.loads(body) for _position, body in rows],
        "next_cursor": cursor_for(rows[-1][0] if rows else position),
        "has_more": has_more,
    }


def event_get(*, actor: User, event_id: str) -> dict:
    body = visible_events(actor=actor).filter(id=event_id).values_list("body", flat=True).first()
    if body is None:
        raise NotFoundError(_("Event not found."))
    return json.loads(body)
