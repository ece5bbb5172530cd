"""Recipients are stored in full but never shown in full through the API."""

import phonenumbers

MASK = "****"


def mask_phone(value: str) -> str:
    """`+8613800138000` → `138****8000`; other countries keep their `+cc ` prefix."""
    try:
        number = phonenumbers.parse(value, None)
        national = phonenumbers.national_significant_number(number)
        prefix = "" if number.country_code == 86 else f"+{number.country_code} "
    except phonenumbers.NumberParseException:
        national, prefix = "".join(ch for ch in value if ch.isdigit()), ""
    if len(national) >= 8:
        return f"{prefix}{national[:3]}{MASK}{national[-4:]}"
    return f"{prefix}{MASK}{national[-2:]}"


def mask_email(value: str) -> str:
    """`zhang.san@example.com` → `z***@example.com`."""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else f"{value[:1]}***"


def mask_recipient(channel: str, value: str) -> str:
    if channel == "email" or "@" in value:
        return mask_email(value)
    return mask_phone(value)
