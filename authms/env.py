"""Small typed readers for settings that come from the environment."""

import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def parse_duration_seconds(raw: str) -> int:
    """`900`, `15m`, `12h` or `7d` → seconds."""
    match = _DURATION.match(raw)
    if not match:
        raise ValueError(f"Expected a duration like 900, 15m, 12h or 7d, got {raw!r}.")
    number, unit = match.groups()
    return int(number) * _UNIT_SECONDS[unit]


def env_seconds(name: str, default: str) -> int:
    """A duration from the environment, in seconds."""
    try:
        return parse_duration_seconds(os.environ.get(name, default))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


def env_prefixed(prefix: str) -> dict[str, str]:
    """Every variable named `<prefix><NAME>`, as {NAME: value} (e.g. ANYMAIL_* → ANYMAIL)."""
    return {name.removeprefix(prefix): value for name, value in os.environ.items() if name.startswith(prefix)}
