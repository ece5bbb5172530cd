"""The staff audit trail: Django's admin LogEntry, which already records every add, change
and delete made in the console, plus the console's own actions (retry, sync now, notices
sent, suppressions lifted), so one list answers "who did what, when, to which objects"."""

from collections.abc import Iterable

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

# Above this many objects an action is one summary entry, not one per object.
MAX_ENTRIES_PER_ACTION = 100


def staff_action_record(*, actor, action: str, objects: Iterable[models.Model] = ()) -> int:
    """Record `action` ("Retried as batch bat_…") by `actor` on each of `objects` (or once,
    on none, or summarised when there are very many). Returns the entries written."""
    objects = list(objects)
    if not objects or len(objects) > MAX_ENTRIES_PER_ACTION:
        suffix = f" ({len(objects)} objects)" if objects else ""
        LogEntry.objects.create(
            user_id=actor.pk, action_flag=CHANGE, change_message=f"{action}{suffix}", object_repr="—"
        )
        return 1
    content_types = ContentType.objects.get_for_models(*objects)
    LogEntry.objects.bulk_create(
        LogEntry(
            user_id=actor.pk,
            content_type=content_types[obj],
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            action_flag=CHANGE,
            change_message=action,
        )
        for obj in objects
    )
    return len(objects)
