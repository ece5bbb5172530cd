"""Signed one-click unsubscribe links (RFC 8058) for emails."""

from functools import cache

from django.conf import settings
from django.core import signing
from django.urls import reverse

from communication.models import CRITICAL_CATEGORIES

_SALT = "communication.unsubscribe"


def unsubscribe_token(*, tenant_id: str, channel: str, recipient: str, category: str = "") -> str:
    """`category`: the message's, which one click switches off (none for a critical one: its
    link can only unsubscribe from everything)."""
    claims = {"t": tenant_id, "c": channel, "r": recipient}
    if category and category not in CRITICAL_CATEGORIES:
        claims["k"] = category
    return signing.dumps(claims, salt=_SALT, compress=True)


def unsubscribe_url(*, tenant_id: str, channel: str, recipient: str, category: str = "") -> str:
    token = unsubscribe_token(tenant_id=tenant_id, channel=channel, recipient=recipient, category=category)
    before, after = _path_around_token(settings.ROOT_URLCONF)
    return f"{settings.PUBLIC_BASE_URL}{before}{token}{after}"


@cache
def _path_around_token(urlconf: str) -> tuple[str, str]:
    """The link's path before and after the token, resolved once: every email of a bulk
    carries a link, and reverse() cost more than signing the token."""
    before, _, after = reverse(
        "communication-unsubscribe", urlconf=urlconf, kwargs={"token": "TOKEN"}
    ).partition("TOKEN")
    return before, after


def read_unsubscribe_token(token: str) -> dict | None:
    """The signed claims, or None when the token was not made by us. Links never expire."""
    try:
        return signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return None
