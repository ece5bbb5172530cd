"""Recipients are stored in full but never shown in full through the API, nor inside the
provider answers and errors stored beside them."""

import re
from functools import cache

import phonenumbers
from django.conf import settings

from communication.channels import channel_spec

MASK = "****"


@cache
def _home_prefix(region: str) -> str:
    return f"+{phonenumbers.country_code_for_region(region)}"


def _mask_national(national: str) -> str:
    if len(national) >= 8:
        return f"{national[:3]}{MASK}{national[-4:]}"
    return f"{MASK}{national[-2:]}"


def mask_phone(value: str) -> str:
    """`+8613800138000` → `138****8000`; other countries keep their `+cc ` prefix.

    Stored numbers are E.164, so numbers of the default region are masked by slicing off
    its known country code; only foreign or malformed values need a full parse.
    """
    home = _home_prefix(settings.SMS_DEFAULT_REGION)
    if value.startswith(home) and value[1:].isdigit():
        return _mask_national(value[len(home) :])
    try:
        number = phonenumbers.parse(value, None)
        national = phonenumbers.national_significant_number(number)
        prefix = f"+{number.country_code} "
    except phonenumbers.NumberParseException:
        national, prefix = "".join(ch for ch in value if ch.isdigit()), ""
    return prefix + _mask_national(national)


def mask_email(value: str) -> str:
    """`zhang.san@example.com` → `z***@example.com`."""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else f"{value[:1]}***"


def mask_push_target(value: str) -> str:
    """A push log's recipient is a device (or, when it failed early, a user) id: not secret.
    Anything else is masked like a number."""
    return value if re.fullmatch(r"(dev|usr)_[0-9A-Z]{26}", value) else mask_phone(value)


def mask_recipient(channel: str, value: str) -> str:
    """Masked as the channel's addresses are (an address with `@` always as an email)."""
    if "@" in value:
        return mask_email(value)
    try:
        return channel_spec(channel).mask(value)
    except LookupError:  # a channel without a spec yet: mask as the most common kind
        return mask_phone(value)


def _phone_spellings(value: str) -> list[str]:
    """How a provider may write an E.164 number back: `+8613800138000`, `8613800138000`, `13800138000`
    (numbers of the default region by slicing, as in `mask_phone`: this runs for every message sent)."""
    home = _home_prefix(settings.SMS_DEFAULT_REGION)
    if value.startswith(home) and value[1:].isdigit():
        national = value[len(home) :]
    else:
        try:
            national = phonenumbers.national_significant_number(phonenumbers.parse(value, None))
        except phonenumbers.NumberParseException:
            return [value]
    return [value, value.lstrip("+"), national]


def redact_recipient(text: str | None, channel: str, recipient: str) -> str | None:
    """`text` (a provider answer, an error) with every spelling of the recipient masked.

    Providers echo the number or address they were given (SUBMAIL's `"to"`, an SMTP
    refusal's `<address>`), and those texts are stored and served next to the masked
    recipient; this keeps them from undoing the mask.
    """
    if not text or not recipient:
        return text
    masked = mask_recipient(channel, recipient)
    if channel == "email" or "@" in recipient:
        return re.sub(re.escape(recipient), masked, text, flags=re.IGNORECASE)
    for spelling in sorted(set(_phone_spellings(recipient)), key=len, reverse=True):
        if len(spelling) >= 6:  # shorter "numbers" are not recipients anyone could recognise
            text = text.replace(spelling, masked)
    return text
