"""Sending caps: how many messages a tenant may queue per channel in a day and a month.

A bulk reserves its whole count or nothing: it locks the tenant's usage rows for the day and
the month (in that order, so two bulks cannot deadlock), checks both caps, and adds its count,
in the bulk's own transaction. A bulk racing another for the last of an allowance waits for
the other's commit and then sees its usage: the two cannot both pass.
"""

from datetime import date, datetime
from functools import partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from authms.errors import LimitExceededError
from authms.models import Tenant, User
from communication.models import SendUsage
from notifications.services import notify

PERIODS = (SendUsage.Period.DAY, SendUsage.Period.MONTH)


def caps_for(tenant: Tenant, channel: str) -> dict[str, int]:
    """The tenant's caps on `channel` per period (0: none): its own, else the deployment's."""
    own = (tenant.send_caps or {}).get(channel, {})
    return {period: int(own.get(period, settings.SEND_CAPS[channel][period])) for period in PERIODS}


def period_starts(now: datetime | None = None) -> dict[str, date]:
    local = timezone.localtime(now or timezone.now(), ZoneInfo(settings.CAPS_TIME_ZONE)).date()
    return {SendUsage.Period.DAY: local, SendUsage.Period.MONTH: local.replace(day=1)}


def _this_period(rows, starts: dict[str, date]) -> list[SendUsage]:
    """Of these usage rows, the current day's and the current month's."""
    return [row for row in rows.filter(starts__in=starts.values()) if row.starts == starts[row.period]]


def usage_reserve(*, tenant: Tenant, channel: str, count: int) -> None:
    """Adds `count` messages to the tenant's usage, or raises LimitExceededError (429) with the
    remaining allowance when a cap would be passed. Runs in the caller's transaction."""
    caps = caps_for(tenant, channel)
    if count <= 0 or not any(caps.values()):
        return
    starts = period_starts()
    with transaction.atomic():
        for period in PERIODS:  # rows exist before they are locked
            SendUsage.objects.get_or_create(
                tenant=tenant, channel=channel, period=period, starts=starts[period]
            )
        locked = SendUsage.objects.select_for_update().filter(tenant=tenant, channel=channel)
        # "day" before "month": one lock order for every bulk.
        rows = {row.period: row for row in _this_period(locked.order_by("-period"), starts)}
        remaining = {period: max(caps[period] - rows[period].used, 0) for period in PERIODS if caps[period]}
        short = {period: left for period, left in remaining.items() if count > left}
        if short:
            period = min(short, key=short.get)
            raise LimitExceededError(
                _(
                    "This bulk of %(count)s %(channel)s messages would pass the tenant's %(period)s cap of %(cap)s; "
                    "%(left)s remain. Nothing was queued."
                )
                % {
                    "count": f"{count:,}",
                    "channel": channel,
                    "period": _(period),
                    "cap": f"{caps[period]:,}",
                    "left": f"{short[period]:,}",
                },
                data={"channel": channel, "requested": count, "remaining": remaining, "caps": caps},
            )
        for period in PERIODS:
            row, used = rows[period], rows[period].used + count
            reached = _threshold_reached(used, caps[period])
            SendUsage.objects.filter(pk=row.pk).update(used=used, alerted=max(row.alerted, reached))
            if reached > row.alerted:  # decided under the row lock: one notice per threshold and period
                transaction.on_commit(
                    partial(
                        _alert_admins,
                        tenant=tenant,
                        channel=channel,
                        period=period,
                        used=used,
                        cap=caps[period],
                        share=reached,
                    ),
                    robust=True,  # the bulk is committed: a failed notice must not turn it into an error
                )


ALERT_SHARES = (100, 80)


def _threshold_reached(used: int, cap: int) -> int:
    """The highest alert share (100, 80, or 0) that `used` has reached of `cap` (0: no cap)."""
    return next((share for share in ALERT_SHARES if cap and used * 100 >= cap * share), 0)


def _alert_admins(*, tenant: Tenant, channel: str, period: str, used: int, cap: int, share: int) -> None:
    """One inbox notice to the tenant's admins."""
    admins = list(
        User.objects.filter(tenant_id=tenant.id, is_staff=True, is_active=True).values_list("id", flat=True)
    )
    if not admins:
        return
    notify(
        tenant_id=tenant.id,
        user_ids=admins,
        type="communication",
        event_type="communication.cap.reached",
        priority="high" if share >= 100 else "medium",
        title=f"{channel.upper()} {period} cap: {share}% used ({used:,} of {cap:,})",
        content=(
            f"Further {channel} bulks are refused until the {period} ends."
            if share >= 100
            else f"{cap - used:,} {channel} messages remain this {period}."
        ),
        action_url=f"/{settings.API_PREFIX}admin/usage",
        metadata={"channel": channel, "period": period, "used": used, "cap": cap, "share": share},
    )


def usage_overview(*, tenant: Tenant) -> list[dict]:
    """Per channel and period: the cap, what was used and what remains (None: no cap)."""
    starts = period_starts()
    used = {
        (row.channel, row.period): row.used
        for row in _this_period(SendUsage.objects.filter(tenant=tenant), starts)
    }
    lines = []
    for channel in settings.SEND_CAPS:
        caps = caps_for(tenant, channel)
        for period in PERIODS:
            count = used.get((channel, period), 0)
            cap = caps[period] or None
            lines.append(
                {
                    "channel": channel,
                    "period": period,
                    "starts": starts[period],
                    "cap": cap,
                    "used": count,
                    "remaining": None if cap is None else max(cap - count, 0),
                }
            )
    return lines
