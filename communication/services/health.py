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

Each switch writes one ProviderSwitch row and one notice to platform staff, whatever the number
of workers (the state change is a conditional UPDATE). A provider is never skipped when no
other can take the message.
"""

import logging
import time
from collections.abc import Sequence

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from authms.models import User
from communication.models import ProviderHealth, ProviderSwitch
from providers.base import Outcome, SendResult

logger = logging.getLogger(__name__)

FIELDS = ("ok", "bad", "calls", "ms")


def _key(provider: str, minute: int, field: str) -> str:
    return f"provider-health:{provider}:{minute}:{field}"


def record_call(provider: str, results: Sequence[SendResult], seconds: float) -> None:
    """Count one call (best effort: a cache outage costs statistics, never a message)."""
    bad = sum(
        1
        for r in results
        if r.outcome in (Outcome.RETRY, Outcome.UNKNOWN) or (r.outcome == Outcome.FAILED and r.provider_fault)
    )
    minute = int(time.time() // 60)
    ttl = settings.HEALTH_WINDOW_SECONDS + 120
    try:
        for field, value in (
            ("ok", len(results) - bad),
            ("bad", bad),
            ("calls", 1),
            ("ms", int(seconds * 1000)),
        ):
            if value:
                _add_to(_key(provider, minute, field), value, ttl)
    except Exception as exc:  # noqa: BLE001 - any cache failure: statistics are optional
        logger.warning("Provider health statistics not recorded: %s", exc)


def _add_to(key: str, value: int, ttl: int) -> None:
    """One round trip once the minute's counter exists (every call after the first)."""
    try:
        cache.incr(key, value)
    except ValueError:  # not there yet
        if not cache.add(key, value, timeout=ttl):
            cache.incr(key, value)  # another process created it meanwhile


def call_stats(provider: str, *, since_minute: int) -> dict[str, int]:
    """Sums of the counters from `since_minute` to now."""
    now_minute = int(time.time() // 60)
    keys = {
        _key(provider, minute, field): field
        for minute in range(since_minute, now_minute + 1)
        for field in FIELDS
    }
    totals = dict.fromkeys(FIELDS, 0)
    for key, value in cache.get_many(list(keys)).items():
        totals[keys[key]] += int(value)
    return totals


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


def _switch(provider: str, state: str, reason: str) -> bool:
    """Move a provider to `state`; True only for the call that did (one audit row, one notice)."""
    with transaction.atomic():
        health, _ = ProviderHealth.objects.select_for_update().get_or_create(provider=provider)
        if health.state == state:
            return False
        health.state, health.changed_at, health.reason = state, timezone.now(), reason
        health.save()
        ProviderSwitch.objects.create(provider=provider, state=state, reason=reason)
        transaction.on_commit(lambda: _tell_staff(provider, state, reason))
    logger.warning("Provider %s is now %s: %s", provider, state, reason)
    forget_rotation()
    return True


def forget_rotation() -> None:
    """Read the rotation afresh on the next routing (after a switch; between tests)."""
    global _out_cache
    _out_cache = (0.0, frozenset())


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
    switches = []
    window_minutes = max(1, settings.HEALTH_WINDOW_SECONDS // 60)
    now_minute = int(time.time() // 60)
    states = dict(ProviderHealth.objects.filter(provider__in=providers).values_list("provider", "state"))
    changed = dict(
        ProviderHealth.objects.filter(provider__in=providers).values_list("provider", "changed_at")
    )
    for provider in providers:
        if states.get(provider, ProviderHealth.State.IN) == ProviderHealth.State.IN:
            stats = call_stats(provider, since_minute=now_minute - window_minutes + 1)
            reason = _unhealthy(stats)
            if reason and _switch(provider, ProviderHealth.State.OUT, reason):
                switches.append(f"{provider}: out")
        else:
            went_out = int(changed[provider].timestamp() // 60)
            probe_minutes = max(1, settings.HEALTH_PROBE_WINDOW_SECONDS // 60)
            stats = call_stats(provider, since_minute=max(went_out + 1, now_minute - probe_minutes + 1))
            reason = _recovered(stats)
            if reason and _switch(provider, ProviderHealth.State.IN, reason):
                switches.append(f"{provider}: in")
    return switches


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
