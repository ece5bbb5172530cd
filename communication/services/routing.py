"""Routing with a tenant's provider order and provider health: providers out of rotation are
passed by, except for probes."""

import random
import time

from django.conf import settings

from authms.models import Tenant
from communication.services.health import out_of_rotation
from providers.base import Provider
from providers.registry import route_message

TENANT_ORDER_TTL_SECONDS = 30
_tenant_orders: dict[str, tuple[float, tuple[str, ...]]] = {}


def tenant_order(tenant_id: str | None, channel: str) -> tuple[str, ...]:
    """The tenant's own provider order for the channel (read at most every 30 s per process)."""
    if channel != "sms" or not tenant_id:
        return ()
    read_at, order = _tenant_orders.get(tenant_id, (0.0, ()))
    if time.monotonic() - read_at >= TENANT_ORDER_TTL_SECONDS:
        raw = Tenant.objects.filter(id=tenant_id).values_list("sms_providers", flat=True).first() or ""
        order = tuple(name for name in raw.split(",") if name)
        _tenant_orders[tenant_id] = (time.monotonic(), order)
    return order


def forget_tenant_orders() -> None:
    """Read tenants' orders afresh (after a change; between tests)."""
    _tenant_orders.clear()


def route(
    channel: str, provider_codes: dict[str, str], *, tenant_id: str | None = None, after: str | None = None
) -> Provider | None:
    """The provider a message goes to next (see providers.registry.route_message), in the
    tenant's order when it has one: providers out of rotation are skipped, except for a probe
    share of the traffic and when no other provider can take the message.

    Push has no route (None): a log stays with the provider serving its device's push service,
    for retries too, and never fails over (no other service knows the device)."""
    if channel == "push":
        return None
    order = tenant_order(tenant_id, channel)
    out = out_of_rotation()
    if out and random.random() >= settings.HEALTH_PROBE_SHARE:  # noqa: S311 - a sampling share
        provider = route_message(channel, provider_codes, after=after, skip=out, order=order)
        if provider is not None:
            return provider
    return route_message(channel, provider_codes, after=after, order=order)
