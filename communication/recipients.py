"""Recipient normalisation: E.164 phone numbers, emails with a lower-cased domain, device ids.

Normalised values are what logs and suppressions store, so "13800138000",
"+86 138 0013 8000" and "+8613800138000" are one recipient.
"""

import re
from dataclasses import dataclass
from functools import cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from phonenumbers.phonemetadata import PhoneMetadata

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


@dataclass(frozen=True)
class _MobileShape:
    """The default region's mobile numbers as libphonenumber's own metadata describes them."""

    prefix: str  # "+86"
    general: re.Pattern
    mobile: re.Pattern
    lengths: frozenset[int]
    national_prefix: re.Pattern | None  # what parsing might strip: such numbers take the full parse


@cache
def _mobile_shape(region: str) -> _MobileShape | None:
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.mobile is None or not metadata.mobile.national_number_pattern:
        return None
    strip = metadata.national_prefix_for_parsing or metadata.national_prefix
    return _MobileShape(
        prefix=f"+{metadata.country_code}",
        general=re.compile(metadata.general_desc.national_number_pattern),
        mobile=re.compile(metadata.mobile.national_number_pattern),
        lengths=frozenset(metadata.mobile.possible_length or metadata.general_desc.possible_length),
        national_prefix=re.compile(strip) if strip else None,
    )


def _e164_mobile_of_region(text: str, region: str) -> str | None:
    """The E.164 form of a mobile number of `region` written "+<code><digits>", decided with the
    same metadata `phonenumbers.parse` + `is_valid_number` use, without their cost (a bulk of
    10,000 numbers spent most of its validation there); None: let the full parse decide."""
    shape = _mobile_shape(region)
    if shape is None or not text.startswith(shape.prefix):
        return None
    national = text[len(shape.prefix) :]
    if (
        not (national.isascii() and national.isdigit())
        or national[0] == "0"
        or len(national) not in shape.lengths
    ):
        return None
    if shape.national_prefix is not None and shape.national_prefix.match(national):
        return None
    if shape.general.fullmatch(national) and shape.mobile.fullmatch(national):
        return text
    return None


def normalise_phone(raw: str, region: str | None = None) -> Recipient:
    text = raw.strip()
    region = region or settings.SMS_DEFAULT_REGION
    if fast := _e164_mobile_of_region(text, region):
        return Recipient(raw, fast)
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
