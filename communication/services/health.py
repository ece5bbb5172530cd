"""Provider health: rolling call outcomes, and switching providers out of and back into rotation.

Every provider call adds its messages to per-minute counters in the shared cache: handed over
(sent, or refused for the message's own sake) or not (retry, unknown, our account's fault
there), and the call's duration. Every 30 s (beat) `providers_health_check` reads the last
HEALTH_WINDOW:

- a provider in rotation with at least HEALTH_MIN_MESSAGES messages of which HEALTH_OUT_SHARE
  (50 %) or more were not handed over, or whose calls took HEALTH_MAX_LATENCY_SECONDS on
  average, goes out of rotation: routing passes it by for the next provider of the route;
- while out, routing still sends it a probe share (HEALTH_PROBE_SHARE, 10 %) of the messages it
  could take (a failed probe moves on to the next provider at once: nothing is lost); over the
  last HEALTH_PROBE_WINDOW (2 min, and from the minute after it went out), when at least
  HEALTH_MIN_MESSAGES probes show at most
  HEALTH_IN_SHARE (10 %) not handed over, it is back in rotation (hysteresis: out at 50 %, in
  at 10 %).

A provider that reports deliveries (polled or pushed) is also judged, like GOV.UK Notify does,
on what happens after the hand-over: when HEALTH_UNDELIVERED_SHARE (30 %) or more of the
messages it accepted HEALTH_UNDELIVERED_AFTER (5 min) to HEALTH_UNDELIVERED_WINDOW (15 min) ago
are still `sent`, with no delivery report, it goes out of rotation too, and it only comes back
when probes that old have been delivered (so a gateway that takes messages and sits on them is
not put back after two minutes of accepted probes).

Each switch writes one ProviderSwitch row and one notice to platform staff, whatever the number
of workers (the state change is a conditional UPDATE). A provider is never skipped when no
other can take the message.
"""

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from authms.models import User
from communication.models import Event, ProviderHealth, ProviderSwitch, SyncRun
from communication.selectors import awaiting_report_count
from communication.services.events import event_record
from providers.base import Outcome, Provider, SendResult
from providers.registry import provider_by_name

logger = logging.getLogger(__name__)

FIELDS = ("ok", "bad", "calls", "ms", "sent")


def _key(provider: str, minute: int, field: str) -> str:
    return f"provider-health:{provider}:{minute}:{field}"


# Counts wait here at most FLUSH_SECONDS before they go to the shared cache: a busy worker then
# makes a few cache round trips a second instead of several per provider call.
FLUSH_SECONDS = 1.0
_buffer: dict[str, int] = defaultdict(int)
_buffer_lock = threading.Lock()
_flushed_at = 0.0


def record_call(provider: str, results: Sequence[SendResult], seconds: float) -> None:
    """Count one call (best effort: a cache outage costs statistics, never a message)."""
    bad = sum(
        1
        for r in results
        if r.outcome in (Outcome.RETRY, Outcome.UNKNOWN) or (r.outcome == Outcome.FAILED and r.provider_fault)
    )
    minute = int(time.time() // 60)
    with _buffer_lock:
        for field, value in (
            ("ok", len(results) - bad),
            ("bad", bad),
            ("calls", 1),
            ("ms", int(seconds * 1000)),
            ("sent", sum(1 for r in results if r.outcome == Outcome.SENT)),
        ):
            if value:
                _buffer[_key(provider, minute, field)] += value
    if time.monotonic() - _flushed_at >= FLUSH_SECONDS:
        flush_call_stats()


def flush_call_stats() -> None:
    """Add this process's buffered counts to the shared cache (also at the end of each dispatch)."""
    global _flushed_at
    with _buffer_lock:
        counts, _flushed_at = dict(_buffer), time.monotonic()
        _buffer.clear()
    ttl = settings.HEALTH_WINDOW_SECONDS + settings.HEALTH_UNDELIVERED_WINDOW_SECONDS + 120
    try:
        for key, value in counts.items():
            _add_to(key, value, ttl)
    except Exception as exc:  # noqa: BLE001 - any cache failure: statistics are optional
        logger.warning("Provider health statistics not recorded: %s", exc)


def _add_to(key: str, value: int, ttl: int) -> None:
    """One round trip once the minute's counter exists (every call after the first)."""
    try:
        cache.incr(key, value)
    except ValueError:  # not there yet
        if not cache.add(key, value, timeout=ttl):
            cache.incr(key, value)  # another process created it meanwhile


def call_stats(provider: str, *, since_minute: int, until_minute: int | None = None) -> dict[str, int]:
    """Sums of the counters from `since_minute` to `until_minute` (default: now), inclusive."""
    flush_call_stats()  # what this process counted is included at once
    until_minute = int(time.time() // 60) if until_minute is None else until_minute
    keys = {
        _key(provider, minute, field): field
        for minute in range(since_minute, until_minute + 1)
        for field in FIELDS
    }
    totals = dict.fromkeys(FIELDS, 0)
    if keys:
        for key, value in cache.get_many(list(keys)).items():
            totals[keys[key]] += int(value)
    return totals


def undelivered(provider: str, *, since: datetime | None) -> tuple[int, int] | None:
    """(still without a report, accepted) for the messages `provider` accepted from
    HEALTH_UNDELIVERED_WINDOW to HEALTH_UNDELIVERED_AFTER ago, and after `since`, in whole
    minutes; None when we cannot read its delivery reports (then silence means nothing)."""
    now_minute = int(time.time() // 60)
    first = now_minute - math.ceil(settings.HEALTH_UNDELIVERED_WINDOW_SECONDS / 60)
    if since is not None:
        first = max(first, int(since.timestamp() // 60) + 1)
    # The last whole minute whose messages are all at least HEALTH_UNDELIVERED_AFTER old.
    last = now_minute - math.ceil(settings.HEALTH_UNDELIVERED_AFTER_SECONDS / 60) - 1
    if last < first:
        return 0, 0
    sent_before = datetime.fromtimestamp((last + 1) * 60, UTC)
    if not reports_read_up_to(provider_by_name(provider), sent_before):
        return None  # our polling is behind: their silence is ours
    accepted = call_stats(provider, since_minute=first, until_minute=last)["sent"]
    waiting = awaiting_report_count(
        provider=provider, sent_from=datetime.fromtimestamp(first * 60, UTC), sent_before=sent_before
    )
    return waiting, max(accepted, waiting)  # counters are best effort; the rows are not


def reports_read_up_to(provider: Provider, sent_before: datetime) -> bool:
    """Whether we have read the provider's reports for what it accepted before `sent_before`:
    pushed receipts arrive by themselves; polled ones only if the status sync polls (a call
    within three intervals), and its last call read a page that was not full, over a window
    reaching that far. A rate-limited poll that is behind (SUBMAIL: 500 records a minute after
    a spike) must not make the provider look silent."""
    if provider.push_token:
        return True
    if provider.status_poll_interval is None:
        return False
    since = timezone.now() - timedelta(seconds=3 * provider.status_poll_interval)
    last = (
        SyncRun.objects.filter(provider=provider.name, started_at__gte=since).order_by("-started_at").first()
    )
    return bool(
        last
        and not last.error
        and last.received < settings.STATUS_SYNC_ROWS
        and last.window_end is not None
        and last.window_end >= sent_before
    )


def _waiting_share(counts: tuple[int, int] | None) -> float | None:
    """The share of accepted messages still without a report; None when too few to judge."""
    if counts is None or counts[1] < settings.HEALTH_MIN_MESSAGES:
        return None
    waiting, accepted = counts
    return waiting / accepted


def _undelivered_reason(counts: tuple[int, int] | None) -> str:
    """Why the undelivered share condemns the provider, or "" (too few messages, or fine)."""
    share = _waiting_share(counts)
    if share is None or share < settings.HEALTH_UNDELIVERED_SHARE:
        return ""
    minutes = settings.HEALTH_UNDELIVERED_AFTER_SECONDS // 60
    return f"{share:.0%} of {counts[1]} messages it accepted have no delivery report after {minutes} min"


# --- Rotation -----------------------------------------------------------------------------

_out_cache: tuple[float, frozenset[str]] = (0.0, frozenset())


def out_of_rotation() -> frozenset[str]:
    """Providers out of rotation, read at most every HEALTH_STATE_TTL seconds per process."""
    global _out_cache
    read_at, names = _out_cache
    if time.monotonic() - read_at >= settings.HEALTH_STATE_TTL_SECONDS:
        names = frozenset(
            ProviderHealth.objects.filter(state=ProviderHealth.State.OUT).values_list("provider", flat=True)
        )
        _out_cache = (time.monotonic(), names)
    return names


def _switch(provider: str, state: str, reason: str, cause: str = "") -> bool:
    """Move a provider to `state`; True only for the call that did (one audit row, one notice)."""
    with transaction.atomic():
        health, _ = ProviderHealth.objects.select_for_update().get_or_create(provider=provider)
        if health.state == state:
            return False
        health.state, health.changed_at, health.reason, health.cause = state, timezone.now(), reason, cause
        health.save()
        ProviderSwitch.objects.create(provider=provider, state=state, reason=reason)
        event_record(  # platform-wide: no tenant's feed lists it
            type=Event.Type.PROVIDER_SWITCHED,
            tenant_id=None,
            provider=provider,
            data={"provider": provider, "state": state, "reason": reason},
        )
        transaction.on_commit(lambda: _tell_staff(provider, state, reason))
    logger.warning("Provider %s is now %s: %s", provider, state, reason)
    forget_rotation()
    return True


def forget_rotation() -> None:
    """Read the rotation afresh on the next routing (after a switch; between tests)."""
    global _out_cache
    _out_cache = (0.0, frozenset())


def forget_unflushed_counts() -> None:
    """Between tests: one test's calls are not counted in the next one's cache."""
    with _buffer_lock:
        _buffer.clear()


def _tell_staff(provider: str, state: str, reason: str) -> None:
    from notifications.services import notify

    out = state == ProviderHealth.State.OUT
    by_tenant: dict[str, list[str]] = {}
    for user_id, tenant_id in User.objects.filter(is_superuser=True, is_active=True).values_list(
        "id", "tenant_id"
    ):
        by_tenant.setdefault(tenant_id, []).append(user_id)
    for tenant_id, user_ids in by_tenant.items():
        notify(
            tenant_id=tenant_id,
            user_ids=user_ids,
            type="system",
            event_type="provider.health.out" if out else "provider.health.in",
            priority="high" if out else "medium",
            title=f"{provider} taken out of rotation" if out else f"{provider} back in rotation",
            content=reason,
            action_url="/admin/communication/providerswitch/",
            metadata={"provider": provider, "state": state},
        )


def providers_health_check(providers: Sequence[str]) -> list[str]:
    """Evaluate each provider; returns the switches made, e.g. ["submail: out"]."""
    health = {row.provider: row for row in ProviderHealth.objects.filter(provider__in=providers)}
    switches = []
    for provider in providers:
        row = health.get(provider)
        if row is None or row.state == ProviderHealth.State.IN:
            switched = _check_in_rotation(provider, back_since=row.changed_at if row else None)
        else:
            switched = _check_out_of_rotation(provider, row)
        if switched:
            switches.append(f"{provider}: {switched}")
    return switches


def _check_in_rotation(provider: str, *, back_since: datetime | None) -> str:
    now_minute = int(time.time() // 60)
    window_minutes = max(1, settings.HEALTH_WINDOW_SECONDS // 60)
    reason = _unhealthy(call_stats(provider, since_minute=now_minute - window_minutes + 1))
    cause = ProviderHealth.Cause.CALLS
    if not reason:
        # Only what it accepted since it last came back: older silence was judged already.
        counts = undelivered(provider, since=back_since)
        reason = _undelivered_reason(counts)
        cause = ProviderHealth.Cause.DELIVERY
    return "out" if reason and _switch(provider, ProviderHealth.State.OUT, reason, cause) else ""


def _check_out_of_rotation(provider: str, health: ProviderHealth) -> str:
    now_minute = int(time.time() // 60)
    went_out = int(health.changed_at.timestamp() // 60)
    probe_minutes = max(1, settings.HEALTH_PROBE_WINDOW_SECONDS // 60)
    counts = (
        undelivered(provider, since=health.changed_at)
        if health.cause == ProviderHealth.Cause.DELIVERY
        else None
    )
    if counts is not None:
        # Probes delivered are proof enough (their calls worked); accepted ones are not.
        reason = _probes_delivered(counts)
    else:  # out for its calls, or its reports cannot be read now: judged on its calls
        reason = _recovered(
            call_stats(provider, since_minute=max(went_out + 1, now_minute - probe_minutes + 1))
        )
    return "in" if reason and _switch(provider, ProviderHealth.State.IN, reason) else ""


def _probes_delivered(counts: tuple[int, int] | None) -> str:
    """Back from undelivered messages only on delivered probes old enough to judge."""
    share = _waiting_share(counts)
    if share is None or share > settings.HEALTH_IN_SHARE:
        return ""
    return f"{1 - share:.0%} of {counts[1]} probes it accepted were reported delivered in time"


def providers_overview(providers: Sequence[str]) -> list[dict]:
    """What the console dashboard shows platform staff: each provider's state and the figures
    the health check judges it on."""
    health = {row.provider: row for row in ProviderHealth.objects.filter(provider__in=providers)}
    now_minute = int(time.time() // 60)
    window_minutes = max(1, settings.HEALTH_WINDOW_SECONDS // 60)
    lines = []
    for provider in providers:
        row = health.get(provider)
        stats = call_stats(provider, since_minute=now_minute - window_minutes + 1)
        messages = stats["ok"] + stats["bad"]
        counts = undelivered(provider, since=None)
        lines.append(
            {
                "provider": provider,
                "in_rotation": row is None or row.state == ProviderHealth.State.IN,
                "since": row.changed_at if row else None,
                "reason": row.reason if row else "",
                "messages": messages,
                "not_handed_over": round(100 * stats["bad"] / messages, 1) if messages else None,
                "latency_ms": round(stats["ms"] / stats["calls"]) if stats["calls"] else None,
                "undelivered": round(100 * counts[0] / counts[1], 1) if counts and counts[1] else None,
            }
        )
    return lines


def _unhealthy(stats: dict[str, int]) -> str:
    messages = stats["ok"] + stats["bad"]
    if messages < settings.HEALTH_MIN_MESSAGES:
        return ""
    share = stats["bad"] / messages
    if share >= settings.HEALTH_OUT_SHARE:
        return f"{share:.0%} of {messages} messages in the last {settings.HEALTH_WINDOW_SECONDS // 60} min were not handed over"
    latency = stats["ms"] / 1000 / max(1, stats["calls"])
    if latency >= settings.HEALTH_MAX_LATENCY_SECONDS:
        return f"its calls took {latency:.1f} s on average over the last {settings.HEALTH_WINDOW_SECONDS // 60} min"
    return ""


def _recovered(stats: dict[str, int]) -> str:
    messages = stats["ok"] + stats["bad"]
    if messages < settings.HEALTH_MIN_MESSAGES:
        return ""
    share = stats["bad"] / messages
    latency = stats["ms"] / 1000 / max(1, stats["calls"])
    if share <= settings.HEALTH_IN_SHARE and latency < settings.HEALTH_MAX_LATENCY_SECONDS:
        return f"probes handed over {1 - share:.0%} of {messages} messages"
    return ""
