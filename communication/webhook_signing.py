"""Standard Webhooks signatures, and endpoint secrets kept encrypted at rest.

Signature: base64(HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}")) written
`v1,<sig>`; the key is the secret's base64 part after `whsec_`. Pinned in tests to the
specification's vector and checked with the `standardwebhooks` library.
"""

import base64
import hashlib
import hmac
import secrets
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # Svix's size; the spec allows 24–64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_header(secrets_in_use: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """Every secret in use signs (two during a rotation's overlap), space-separated."""
    return " ".join(signature(secret, message_id, timestamp, body) for secret in secrets_in_use)


@cache
def _box(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])


def _keys() -> str:
    """WEBHOOK_SECRET_KEYS: Fernet keys, newest first (older ones still decrypt: key rotation).
    Unset: one derived from SECRET_KEY, so changing SECRET_KEY then needs the old one listed."""
    if settings.WEBHOOK_SECRET_KEYS:
        return settings.WEBHOOK_SECRET_KEYS
    return base64.urlsafe_b64encode(
        hashlib.sha256(f"webhook-secrets:{settings.SECRET_KEY}".encode()).digest()
    ).decode()


def encrypt(secret: str) -> str:
    return _box(_keys()).encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    return _box(_keys()).decrypt(token.encode()).decode()
