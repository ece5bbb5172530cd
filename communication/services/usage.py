"""Sending caps: how many messages a tenant may queue per channel in a day and a month.

A bulk reserves its whole count or nothing: it locks the tenant's usage rows for the day and
the month (in that order, so two bulks cannot deadlock), checks both caps, and adds its count,
in the bulk's own transaction. A bulk racing another for the last of an allowance waits for
the other's commit and then sees its usage: the two cannot both pass.
"""

from datetime import date, datetime
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from authms.errors import LimitExceededError
from authms.models import Tenant
from communication.models import SPEND_METER, SendUsage
from notifications.services import notify_tenant_admins

PERIODS = (SendUsage.Period.DAY, SendUsage.Period.MONTH)
SPEND_UNITS = 10_000  # the spend meter counts ten-thousandths of SPEND_CURRENCY


def caps_for(tenant: Tenant, meter: str) -> dict[str, int]:
    """The tenant's caps on a channel (messages) or on spend (in SPEND_UNITS) per period
    (0: none): its own, else the deployment's."""
    own = (tenant.send_caps or {}).get(meter, {})
    scale = SPEND_UNITS if meter == SPEND_METER else 1
    return {
        period: round(Decimal(str(own.get(period, settings.SEND_CAPS[meter][period]))) * scale)
        for period in PERIODS
    }


def period_starts(now: datetime | None = None) -> dict[str, date]:
    local = timezone.localtime(now or timezone.now(), ZoneInfo(settings.CAPS_TIME_ZONE)).date()
    return {SendUsage.Period.DAY: local, SendUsage.Period.MONTH: local.replace(day=1)}


def _this_period(rows, starts: dict[str, date]) -> list[SendUsage]:
    """Of these usage rows, the current day's and the current month's."""
    return [row for row in rows.filter(starts__in=starts.values()) if row.starts == starts[row.period]]


def spend_capped(tenant: Tenant) -> bool:
    return any(caps_for(tenant, SPEND_METER).values())


def usage_reserve(*, tenant: Tenant, channel: str, count: int, cost=None) -> None:
    """Adds `count` messages (and their estimated `cost`, a callable giving SPEND_UNITS, asked
    only when the tenant has a spend cap) to the tenant's usage, or raises LimitExceededError
    (429) with the remaining allowance when a cap would be passed. Runs in the caller's
    transaction; the channel's rows are locked before the spend rows, one order for every bulk."""
    if count <= 0:
        return
    starts = period_starts()
    with transaction.atomic():
        _reserve(tenant=tenant, meter=channel, amount=count, starts=starts)
        if cost is not None and spend_capped(tenant):
            _reserve(tenant=tenant, meter=SPEND_METER, amount=cost(), starts=starts, channel=channel)


def _reserve(*, tenant: Tenant, meter: str, amount: int, starts: dict[str, date], channel: str = "") -> None:
    caps = caps_for(tenant, meter)
    if amount <= 0 or not any(caps.values()):
        return
    for period in PERIODS:  # rows exist before they are locked
        SendUsage.objects.get_or_create(tenant=tenant, channel=meter, period=period, starts=starts[period])
    locked = SendUsage.objects.select_for_update().filter(tenant=tenant, channel=meter)
    # "day" before "month": one lock order for every bulk.
    rows = {row.period: row for row in _this_period(locked.order_by("-period"), starts)}
    remaining = {period: max(caps[period] - rows[period].used, 0) for period in PERIODS if caps[period]}
    short = {period: left for period, left in remaining.items() if amount > left}
    if short:
        raise _limit_exceeded(
            meter=meter, channel=channel, amount=amount, caps=caps, remaining=remaining, short=short
        )
    for period in PERIODS:
        row, used = rows[period], rows[period].used + amount
        reached = _threshold_reached(used, caps[period])
        SendUsage.objects.filter(pk=row.pk).update(used=used, alerted=max(row.alerted, reached))
        if reached > row.alerted:  # decided under the row lock: one notice per threshold and period
            transaction.on_commit(
                partial(
                    _alert_admins,
                    tenant=tenant,
                    meter=meter,
                    period=period,
                    used=used,
                    cap=caps[period],
                    share=reached,
                ),
                robust=True,  # the bulk is committed: a failed notice must not turn it into an error
            )


def _limit_exceeded(*, meter, channel, amount, caps, remaining, short) -> LimitExceededError:
    period = min(short, key=short.get)
    if meter != SPEND_METER:
        return LimitExceededError(
            _(
                "This bulk of %(count)s %(channel)s messages would pass the tenant's %(period)s cap of %(cap)s; "
                "%(left)s remain. Nothing was queued."
            )
            % {
                "count": f"{amount:,}",
                "channel": meter,
                "period": _(period),
                "cap": f"{caps[period]:,}",
                "left": f"{short[period]:,}",
            },
            data={"channel": meter, "requested": amount, "remaining": remaining, "caps": caps},
        )
    return LimitExceededError(
        _(
            "This bulk's estimated cost of %(cost)s would pass the tenant's %(period)s spend cap of %(cap)s; "
            "%(left)s remain. Nothing was queued."
        )
        % {
            "cost": money(amount),
            "period": _(period),
            "cap": money(caps[period]),
            "left": money(short[period]),
        },
        data={
            "channel": channel,
            "meter": SPEND_METER,
            "currency": settings.SPEND_CURRENCY,
            "estimated_cost": as_currency(amount),
            "remaining": {period: as_currency(left) for period, left in remaining.items()},
            "caps": {period: as_currency(cap) for period, cap in caps.items()},
        },
    )


def as_currency(units: int) -> Decimal:
    return (Decimal(units) / SPEND_UNITS).quantize(Decimal("0.0001"))


def money(units: int) -> str:
    return f"{as_currency(units):,} {settings.SPEND_CURRENCY}"


ALERT_SHARES = (100, 80)


def _threshold_reached(used: int, cap: int) -> int:
    """The highest alert share (100, 80, or 0) that `used` has reached of `cap` (0: no cap)."""
    return next((share for share in ALERT_SHARES if cap and used * 100 >= cap * share), 0)


def _alert_admins(*, tenant: Tenant, meter: str, period: str, used: int, cap: int, share: int) -> None:
    """One inbox notice to the tenant's admins."""
    spend = meter == SPEND_METER
    amount = money if spend else "{:,}".format
    notify_tenant_admins(
        tenant_id=tenant.id,
        type="communication",
        event_type="communication.cap.reached",
        priority="high" if share >= 100 else "medium",
        title="",
        template="communication.cap.exhausted" if share >= 100 else "communication.cap.reached",
        params={
            "meter": meter.upper(),
            "period": period,
            "share": share,
            "used": amount(used),
            "cap": amount(cap),
            "left": amount(cap - used),
        },  # fmt: skip
        action_url=f"/{settings.API_PREFIX}admin/usage",
        metadata={
            "channel": meter,
            "period": period,
            "used": str(as_currency(used)) if spend else used,
            "cap": str(as_currency(cap)) if spend else cap,
            "share": share,
        },
    )


def usage_overview(*, tenant: Tenant) -> list[dict]:
    """Per channel (and spend) and period: the cap, what was used and what remains (None: no
    cap); messages, or SPEND_CURRENCY for spend."""
    starts = period_starts()
    used = {
        (row.channel, row.period): row.used
        for row in _this_period(SendUsage.objects.filter(tenant=tenant), starts)
    }
    lines = []
    for meter in settings.SEND_CAPS:
        caps = caps_for(tenant, meter)
        unit = as_currency if meter == SPEND_METER else int
        for period in PERIODS:
            count = used.get((meter, period), 0)
            cap = caps[period] or None
            lines.append(
                {
                    "channel": meter,
                    "unit": settings.SPEND_CURRENCY if meter == SPEND_METER else "messages",
                    "period": period,
                    "starts": starts[period],
                    "cap": None if cap is None else unit(cap),
                    "used": unit(count),
                    "remaining": None if cap is None else unit(max(cap - count, 0)),
                }
            )
    return lines
