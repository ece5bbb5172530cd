"""Time zones and quiet-hours windows as people write them: "Asia/Shanghai", "21:00-08:00".

Shared by the models that store them (tenant, user, device), the API that accepts them and the
send path that defers messages out of a window.
"""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

QUIET_HOURS_OFF = "off"
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@cache
def time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_time_zone(value: str) -> None:
    if value and value not in time_zones():
        raise ValidationError(_("Unknown time zone; use an IANA name like Asia/Shanghai."))


@dataclass(frozen=True)
class QuietHours:
    """A daily window in local time; it may wrap past midnight (21:00-08:00)."""

    start: time
    end: time

    def deferred_until(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """The end of the window when `moment` falls inside it, else None (an aware datetime)."""
        local = moment.astimezone(zone)
        now = local.time().replace(tzinfo=None)
        wraps = self.start > self.end
        inside = (now >= self.start or now < self.end) if wraps else self.start <= now < self.end
        if not inside:
            return None
        day = local.date() + timedelta(days=1) if wraps and now >= self.start else local.date()
        # Wall-clock end in the zone; fold=0 picks the earlier instant when clocks go back.
        return datetime.combine(day, self.end, tzinfo=zone)

    def __str__(self):
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(value: str) -> QuietHours | None:
    """ "21:00-08:00" → a window; "" or "off" → None. Raises ValidationError otherwise."""
    if value in ("", QUIET_HOURS_OFF):
        return None
    match = _WINDOW.match(value)
    if not match or match.group(1, 2) == match.group(3, 4):
        raise ValidationError(
            _('Quiet hours are "HH:MM-HH:MM" in 24-hour local time (e.g. 21:00-08:00), or "off".')
        )
    hour_from, minute_from, hour_to, minute_to = (int(part) for part in match.groups())
    return QuietHours(time(hour_from, minute_from), time(hour_to, minute_to))


def validate_quiet_hours(value: str) -> None:
    parse_quiet_hours(value)


def time_zone_field(help_text) -> models.CharField:
    return models.CharField(
        _("time zone"), max_length=64, blank=True, validators=[validate_time_zone], help_text=help_text
    )


def quiet_hours_field(help_text) -> models.CharField:
    return models.CharField(
        _("quiet hours"), max_length=11, blank=True, validators=[validate_quiet_hours], help_text=help_text
    )
