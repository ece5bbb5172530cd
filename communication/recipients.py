"""Recipient normalisation: E.164 phone numbers, emails with a lower-cased domain, device ids.

Normalised values are what logs and suppressions store, so "13800138000",
"+86 138 0013 8000" and "+8613800138000" are one recipient.
"""

import re
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator

from communication.channels import channel_spec

_email_validator = EmailValidator()
MAX_RECIPIENT_LENGTH = 320


# Error texts name no value (the log shows the recipient), so equal reasons group together.


@dataclass(frozen=True)
class Recipient:
    raw: str
    value: str  # normalised when valid, else the raw input (trimmed, truncated)
    error: str | None = None

    @property
    def is_valid(self) -> bool:
        return self.error is None


def normalise_phone(raw: str, region: str | None = None) -> Recipient:
    text = raw.strip()
    region = region or settings.SMS_DEFAULT_REGION
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return Recipient(raw, text[:MAX_RECIPIENT_LENGTH], "Not a valid phone number.")
    if not phonenumbers.is_valid_number(number):
        return Recipient(
            raw, text[:MAX_RECIPIENT_LENGTH], f"Not a valid phone number (default region {region})."
        )
    return Recipient(raw, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalise_email(raw: str) -> Recipient:
    text = raw.strip()
    try:
        _email_validator(text)
    except DjangoValidationError:
        return Recipient(raw, text[:MAX_RECIPIENT_LENGTH], "Not a valid email address.")
    local, _, domain = text.rpartition("@")
    return Recipient(raw, f"{local}@{domain.lower()}")


def normalise_device_id(raw: str) -> Recipient:
    """A push log's recipient: the id of the device it goes to."""
    text = raw.strip()
    if re.fullmatch(r"dev_[0-9A-Z]{26}", text):
        return Recipient(raw=raw, value=text)
    return Recipient(raw=raw, value=text[:40], error="Not a device id.")


def normalise(channel: str, raw: str) -> Recipient:
    return channel_spec(channel).normalise(raw)


def suppression_key(channel: str, value: str) -> str:
    """How a normalised recipient is stored and matched on the suppression list."""
    return channel_spec(channel).suppression_key(value)


def normalise_all(channel: str, raws: list[str]) -> list[Recipient]:
    """Normalised recipients in request order, each distinct value once."""
    seen: set[str] = set()
    unique = []
    for raw in raws:
        recipient = normalise(channel, raw)
        if recipient.value not in seen:
            seen.add(recipient.value)
            unique.append(recipient)
    return unique
