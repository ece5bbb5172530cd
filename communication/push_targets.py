"""What a push target must look like before it is stored: an FCM registration token, or a
Web Push subscription (RFC 8030 endpoint, RFC 8291 keys) whose endpoint is a public push
service and never an address inside our network (the SSRF rule)."""

import base64
import binascii
import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from authms.errors import ValidationError
from providers.http import is_internal_address

# FCM registration tokens: base64url-ish text with ':' ("<instance>:APA91b…"), ~150–200 chars.
FCM_TOKEN = re.compile(r"[A-Za-z0-9_\-:.]{20,1024}")
P256DH_BYTES, AUTH_BYTES = 65, 16
# Names that always mean "inside": refused whatever DNS says.
INTERNAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".lan", ".home.arpa")


def fcm_token_clean(token: object) -> str:
    if not isinstance(token, str) or not FCM_TOKEN.fullmatch(token):
        raise ValidationError.for_field(
            "token", _("Not an FCM registration token (20–1024 letters, digits and - _ : .).")
        )
    return token


def _b64url_bytes(value: object, *, field: str, length: int) -> str:
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_\-]+={0,2}", value):
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == length and (length != P256DH_BYTES or raw[0] == 4):
            return value.rstrip("=")
    raise ValidationError.for_field(
        f"subscription.keys.{field}",
        _("%(field)s must be %(length)d bytes in base64url.") % {"field": field, "length": length},
    )


def endpoint_clean(endpoint: object) -> str:
    """An absolute https URL of a public host (http only where WEBPUSH_ALLOW_HTTP is set), in the
    WEBPUSH_ENDPOINT_HOSTS list when one is set; never a private, loopback, link-local or
    otherwise internal address unless WEBPUSH_ALLOW_PRIVATE_ENDPOINTS (tests, local fakes)."""
    field = "subscription.endpoint"
    if not isinstance(endpoint, str) or len(endpoint) > 1024:
        raise ValidationError.for_field(field, _("The endpoint must be a URL of at most 1024 characters."))
    try:
        parts = urlsplit(endpoint)
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise ValidationError.for_field(field, _("The endpoint is not a valid URL.")) from None
    schemes = ("https", "http") if settings.WEBPUSH_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes or not host or parts.username or parts.password:
        raise ValidationError.for_field(field, _("The endpoint must be an https URL of a push service."))
    if not settings.WEBPUSH_ALLOW_PRIVATE_ENDPOINTS and _is_internal(host):
        raise ValidationError.for_field(
            field, _("The endpoint points inside a private network; only public push services are allowed.")
        )
    allowed = settings.WEBPUSH_ENDPOINT_HOSTS
    if allowed and not any(host == name or host.endswith(f".{name}") for name in allowed):
        raise ValidationError.for_field(
            field,
            _("The endpoint's host is not a known push service (%(hosts)s).") % {"hosts": ", ".join(allowed)},
        )
    return endpoint


def _is_internal(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host in ("localhost",) or host.endswith(INTERNAL_NAMES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: the sender checks what it resolves to before connecting
    return is_internal_address(address)


def subscription_clean(subscription: object) -> dict:
    """A browser's `PushSubscription.toJSON()`: {endpoint, expirationTime, keys: {p256dh, auth}}."""
    if not isinstance(subscription, dict) or not isinstance(subscription.get("keys"), dict):
        raise ValidationError.for_field(
            "subscription", _("subscription must be an object with endpoint and keys {p256dh, auth}.")
        )
    keys = subscription["keys"]
    return {
        "endpoint": endpoint_clean(subscription.get("endpoint")),
        "p256dh": _b64url_bytes(keys.get("p256dh"), field="p256dh", length=P256DH_BYTES),
        "auth": _b64url_bytes(keys.get("auth"), field="auth", length=AUTH_BYTES),
    }
