"""What reaches a recipient and when: preferences per category and channel, and quiet hours.

A recipient's choice for a category on a channel is their own `Preference` row, else the
tenant's default (`Tenant.preference_defaults`), else on. Quiet hours are the user's own window,
else the tenant's, read in the user's time zone, else their device's (push), else the tenant's.
Recipients who are not users of the tenant get the tenant's defaults and window.

Critical categories (security) are never switched off nor held back. A bulk asks all of this in
a few set-based queries, and none at all when nobody in the tenant has a choice to make.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from authms.errors import ValidationError
from authms.local_time import QUIET_HOURS_OFF, QuietHours, parse_quiet_hours
from authms.models import Tenant, User
from communication.models import CRITICAL_CATEGORIES, Channel, Device, Preference, Suppression
from communication.preferences import tenant_default, tenant_zone
from communication.services.suppression import suppression_add

# --- The user's own choices (GET/PUT /preferences) -------------------------------------------


@dataclass(frozen=True)
class PreferenceChange:
    category: str
    channel: str
    enabled: bool


def preferences_update(
    *,
    user: User,
    changes: Iterable[PreferenceChange] = (),
    time_zone: str | None = None,
    quiet_hours: str | None = None,
    language: str | None = None,
) -> None:
    """Store a user's choices; switching a critical category off is refused whole (400)."""
    changes = list(changes)
    critical = sorted(
        {
            change.category
            for change in changes
            if change.category in CRITICAL_CATEGORIES and not change.enabled
        }
    )
    if critical:
        raise ValidationError.for_field(
            "preferences",
            _("%(categories)s messages are critical (e.g. verification codes) and cannot be switched off.")
            % {"categories": ", ".join(critical)},
        )
    with transaction.atomic():
        for change in changes:
            Preference.objects.update_or_create(
                user=user,
                category=change.category,
                channel=change.channel,
                defaults={"tenant_id": user.tenant_id, "enabled": change.enabled},
            )
        fields = {"time_zone": time_zone, "quiet_hours": quiet_hours, "language": language}
        fields = {name: value for name, value in fields.items() if value is not None}
        if fields:
            User.objects.filter(pk=user.pk).update(**fields)
            for name, value in fields.items():
                setattr(user, name, value)


def unsubscribe(*, tenant_id: str, channel: str, recipient: str, category: str, everything: bool) -> str:
    """An unsubscribe link followed: the message's category off for that address, or everything
    (the suppression list) when asked or when the link names no category. Users of the tenant
    with that address get the category off in their preferences (they can switch it back);
    an address of nobody's gets a suppression for that category. Returns the category, or ""
    for everything."""
    if everything or not category or category in CRITICAL_CATEGORIES:
        suppression_add(
            tenant_id=tenant_id, channel=channel, recipient=recipient, reason=Suppression.Reason.UNSUBSCRIBED
        )
        return ""
    with transaction.atomic():
        users = list(
            _users_at(tenant_id=tenant_id, channel=channel, recipients=[recipient]).get(recipient, [])
        )
        for person in users:
            Preference.objects.update_or_create(
                user_id=person.user_id, category=category, channel=channel,
                defaults={"tenant_id": tenant_id, "enabled": False},
            )  # fmt: skip
        if not users:
            suppression_add(
                tenant_id=tenant_id, channel=channel, recipient=recipient,
                reason=Suppression.Reason.UNSUBSCRIBED, category=category,
            )  # fmt: skip
    return category


# --- At send time ---------------------------------------------------------------------------


@dataclass
class Audience:
    """Of a bulk's recipients: who switched the category off (why), who is held (until when)."""

    off: dict[str, str] = field(default_factory=dict)
    held_until: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class _Person:
    user_id: str | None
    time_zone: str
    quiet_hours: str


def audience_rules(
    *, tenant: Tenant, channel: str, category: str, recipients: list[str], moment: datetime
) -> Audience:
    """Apply preferences and quiet hours to valid, normalised recipients (push: device ids),
    at `moment` (now, or the bulk's send_at)."""
    audience = Audience()
    if category in CRITICAL_CATEGORIES or not recipients:
        return audience
    tenant_window = parse_quiet_hours(tenant.quiet_hours)
    choices_exist = Preference.objects.filter(
        tenant_id=tenant.id, category=category, channel=channel
    ).exists()
    own_windows_exist = User.objects.filter(tenant_id=tenant.id).exclude(quiet_hours="").exists()
    default_on = tenant_default(tenant, category, channel)
    people = (
        _users_at(tenant_id=tenant.id, channel=channel, recipients=recipients)
        if choices_exist or own_windows_exist or tenant_window is not None
        else {}
    )
    explicit = _explicit_choices(people, category=category, channel=channel) if choices_exist else {}
    off_reason = _off_reason(category=category, channel=channel)
    zone = tenant_zone(tenant)
    for recipient in recipients:
        persons = people.get(recipient) or [_Person(None, "", "")]
        enabled = [explicit.get(person.user_id, default_on) for person in persons]
        if not all(enabled):
            audience.off[recipient] = off_reason(default_on=default_on)
            continue
        held = [_held_until(person, tenant_window, zone, moment) for person in persons]
        held = [until for until in held if until is not None]
        if held:
            audience.held_until[recipient] = max(held)
    return audience


def _users_at(*, tenant_id: str, channel: str, recipients: list[str]) -> dict[str, list[_Person]]:
    """Recipient → the tenant's users it reaches (several users may share an address)."""
    people: dict[str, list[_Person]] = defaultdict(list)
    users = User.objects.filter(tenant_id=tenant_id, is_active=True)
    if channel == Channel.PUSH:
        devices = Device.objects.filter(tenant_id=tenant_id, id__in=recipients).values_list(
            "id", "user_id", "time_zone"
        )
        device_of = {device_id: (user_id, zone) for device_id, user_id, zone in devices}
        found = users.filter(id__in={user_id for user_id, _zone in device_of.values()}).values_list(
            "id", "time_zone", "quiet_hours"
        )
        by_id = {user_id: (zone, window) for user_id, zone, window in found}
        for device_id, (user_id, device_zone) in device_of.items():
            if user_id in by_id:
                user_zone, window = by_id[user_id]
                people[device_id].append(_Person(user_id, user_zone or device_zone, window))
        return people
    if channel == Channel.SMS:
        found = users.filter(phone__any=recipients).values_list("phone", "id", "time_zone", "quiet_hours")
    else:
        lowered = {recipient.lower(): recipient for recipient in recipients}
        found = (
            users.annotate(address=Lower("email"))
            .filter(address__any=list(lowered))
            .values_list("address", "id", "time_zone", "quiet_hours")
        )
        found = [(lowered[address], *rest) for address, *rest in found]
    for recipient, user_id, zone, window in found:
        people[recipient].append(_Person(user_id, zone, window))
    return people


def _explicit_choices(people: dict[str, list[_Person]], *, category: str, channel: str) -> dict[str, bool]:
    user_ids = {person.user_id for persons in people.values() for person in persons}
    return dict(
        Preference.objects.filter(user_id__in=user_ids, category=category, channel=channel).values_list(
            "user_id", "enabled"
        )
    )


def _off_reason(*, category: str, channel: str):
    label = f"{category} {'SMS' if channel == Channel.SMS else channel}"

    def reason(*, default_on: bool) -> str:  # stored in the log's error, in English like the rest of it
        return (
            f"The recipient switched {label} messages off (preferences)."
            if default_on
            else f"{label.capitalize()} messages are off by the tenant's default, and the recipient has not switched them on."
        )

    return reason


def _held_until(person: _Person, tenant_window: QuietHours | None, zone: ZoneInfo, moment: datetime):
    window = (
        tenant_window
        if person.quiet_hours == ""
        else None
        if person.quiet_hours == QUIET_HOURS_OFF
        else parse_quiet_hours(person.quiet_hours)
    )
    if window is None:
        return None
    return window.deferred_until(moment, ZoneInfo(person.time_zone) if person.time_zone else zone)
