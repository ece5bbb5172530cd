"""Which provider serves which channel, from settings.

`COMMUNICATION_PROVIDERS` maps a provider name to its class (dotted path),
`CHANNEL_PROVIDERS` maps a channel to its primary provider and `FAILOVER_PROVIDERS` to the
ones tried after it. Adding a provider is one module plus one entry in each.
"""

from collections.abc import Sequence
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from providers.base import Provider


@cache
def provider_by_name(name: str) -> Provider:
    try:
        dotted = settings.COMMUNICATION_PROVIDERS[name]
    except KeyError:
        raise LookupError(
            f"Unknown provider {name!r}; known: {', '.join(settings.COMMUNICATION_PROVIDERS)}"
        ) from None
    provider = import_string(dotted)()
    provider.name = name
    return provider


def provider_for_channel(channel: str) -> Provider:
    try:
        name = settings.CHANNEL_PROVIDERS[channel]
    except KeyError:
        raise LookupError(f"No provider is configured for channel {channel!r}.") from None
    return provider_by_name(name)


def channel_route(channel: str, order: Sequence[str] = ()) -> list[str]:
    """The providers of a channel in the order they are tried: the deployment's route, or a
    tenant's `order` of (some of) its providers."""
    primary = provider_for_channel(channel).name
    route = [primary, *(name for name in settings.FAILOVER_PROVIDERS.get(channel, []) if name != primary)]
    chosen = [name for name in order if name in route]
    return chosen or route


def providers_in_use() -> list[str]:
    """Every provider on some channel's route, once, in route order."""
    routed = [name for channel in settings.CHANNEL_PROVIDERS for name in channel_route(channel)]
    return list(dict.fromkeys([*routed, *settings.PUSH_PROVIDERS.values()]))


def route_message(
    channel: str,
    provider_codes: dict[str, str],
    *,
    after: str | None = None,
    skip: frozenset[str] = frozenset(),
    order: Sequence[str] = (),
) -> Provider | None:
    """The first provider of the channel's route (a tenant's `order` of it; after `after`, for
    a failover; not in `skip`) that can send a message with these template codes; None when
    none is left."""
    route = channel_route(channel, order)
    start = route.index(after) + 1 if after in route else 0
    for name in route[start:]:
        provider = provider_by_name(name)
        if name not in skip and provider.can_send(provider_codes):
            return provider
    return None


def reset_cache():
    """For tests and settings changes at runtime."""
    provider_by_name.cache_clear()
