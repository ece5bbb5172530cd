"""Which provider serves which channel, from settings.

`COMMUNICATION_PROVIDERS` maps a provider name to its class (dotted path) and
`CHANNEL_PROVIDERS` maps a channel to a provider name. Adding a provider is one module
plus one entry in each.
"""

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


def reset_cache():
    """For tests and settings changes at runtime."""
    provider_by_name.cache_clear()
