"""Routing with provider health: providers out of rotation are passed by, except for probes."""

import random

from django.conf import settings

from communication.services.health import out_of_rotation
from providers.base import Provider
from providers.registry import route_message


def route(channel: str, provider_codes: dict[str, str], *, after: str | None = None) -> Provider | None:
    """The provider a message goes to next (see providers.registry.route_message): providers
    out of rotation are skipped, except for a probe share of the traffic and when no other
    provider can take the message."""
    out = out_of_rotation()
    if out and random.random() >= settings.HEALTH_PROBE_SHARE:  # noqa: S311 - a sampling share
        provider = route_message(channel, provider_codes, after=after, skip=out)
        if provider is not None:
            return provider
    return route_message(channel, provider_codes, after=after)
