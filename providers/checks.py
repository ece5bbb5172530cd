"""Start-up checks: every provider a channel routes to exists and serves that channel."""

from django.conf import settings
from django.core.checks import Error

from providers.registry import provider_by_name


def check_channel_providers(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    routes = {
        channel: [primary, *settings.FAILOVER_PROVIDERS.get(channel, [])]
        for channel, primary in settings.CHANNEL_PROVIDERS.items()
    }
    for channel, names in routes.items():
        for name in names:
            try:
                provider = provider_by_name(name)
            except (LookupError, ImportError) as exc:
                errors.append(Error(str(exc), hint="Add it to COMMUNICATION_PROVIDERS.", id="providers.E001"))
                continue
            if channel not in provider.channels:
                errors.append(
                    Error(
                        f"Provider {name!r} is routed for {channel} but sends {', '.join(sorted(provider.channels))}.",
                        hint="Fix SMS_PROVIDERS / SMS_PROVIDER / EMAIL_PROVIDER.",
                        id="providers.E002",
                    )
                )
    return errors
