"""What differs between channels, in one place: a small spec per channel.

Code that would otherwise ask `if channel == "email"` asks the channel's spec instead:
how a recipient is normalised, keyed on the suppression list and masked; the length limit;
whether a subject is required and an unsubscribe link added; where a user's own address is.
Which providers serve a channel is routing's business (providers/registry.py).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    label: str  # for people: "SMS", "email"
    normalise: Callable[[str], object]  # raw text → communication.recipients.Recipient
    suppression_key: Callable[[str], str]
    mask: Callable[[str], str]
    max_length_setting: str
    needs_subject: bool
    unsubscribe_link: bool
    user_address_field: str  # the User field holding a user's own address on this channel

    @property
    def max_length(self) -> int:
        return getattr(settings, self.max_length_setting)


def _specs() -> dict[str, ChannelSpec]:
    from communication.masking import mask_email, mask_phone, mask_push_target
    from communication.recipients import normalise_device_id, normalise_email, normalise_phone

    return {
        "sms": ChannelSpec(
            name="sms",
            label="SMS",
            normalise=normalise_phone,
            suppression_key=lambda value: value,
            mask=mask_phone,
            max_length_setting="SMS_MAX_LENGTH",
            needs_subject=False,
            unsubscribe_link=False,
            user_address_field="phone",
        ),
        "email": ChannelSpec(
            name="email",
            label="email",
            normalise=normalise_email,
            # Local parts are case-sensitive on paper, not in practice: an unsubscribe from
            # ann@example.com must also stop Ann@example.com.
            suppression_key=str.lower,
            mask=mask_email,
            max_length_setting="EMAIL_MAX_LENGTH",
            needs_subject=True,
            unsubscribe_link=True,
            user_address_field="email",
        ),
        # Bulk requests name users; each of their active devices gets a log whose recipient is
        # the device id (never the token, which is a secret).
        "push": ChannelSpec(
            name="push",
            label="push",
            normalise=normalise_device_id,
            suppression_key=lambda value: value,
            mask=mask_push_target,
            max_length_setting="PUSH_MAX_LENGTH",
            needs_subject=False,
            unsubscribe_link=False,
            user_address_field="id",
        ),
    }


_cache: dict[str, ChannelSpec] = {}


def channel_spec(name: str) -> ChannelSpec:
    if not _cache:
        _cache.update(_specs())
    try:
        return _cache[name]
    except KeyError:
        raise LookupError(f"Unknown channel {name!r}.") from None
