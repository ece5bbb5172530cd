"""Issuing, refreshing and revoking our JWTs.

Every token we issue carries `ver`, a digest of the user's password hash and
`token_version`. Changing the password, deactivating the user or logging out everywhere
changes it, so every earlier token, refresh and access alike, stops working at once, at
no cost beyond the user row each request loads anyway. One refresh token alone (logout
on one device) is revoked by its `jti`; the access tokens it minted end with their short
lifetime.
"""

import re
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from authms.models import RevokedToken, User

VERSION_CLAIM = "ver"
# Ids are stored in primary keys of 30 characters (`usr_` / `tnt_` + a 26-character ULID).
_ID_CLAIM = re.compile(r"[A-Za-z0-9_-]{1,30}")


def token_version_claim(user: User) -> str:
    return salted_hmac(
        "authms.tokens.version", f"{user.password}|{user.token_version}", algorithm="sha256"
    ).hexdigest()[:32]


def invalid_token(reason: str) -> InvalidToken:
    return InvalidToken({"detail": reason, "messages": [{"message": reason}]})


def id_claim(claims, name: str) -> str:
    """A `user_id` / `tenant_id` claim, checked before it reaches any query."""
    value = claims.get(name)
    if not isinstance(value, str) or not _ID_CLAIM.fullmatch(value):
        raise invalid_token(_("Token claim %(name)s is missing or malformed.") % {"name": name})
    return value


def token_for(user: User) -> RefreshToken:
    """A refresh token (its `.access_token` is the access token) with our claims."""
    token = RefreshToken.for_user(user)
    token["tenant_id"] = user.tenant_id
    token[VERSION_CLAIM] = token_version_claim(user)
    return token


def check_user_may_use(user: User | None, claims, *, check_version: bool = True) -> User:
    """The user a token names may still use it: active, same tenant, and (ours) same version."""
    if user is None or not user.is_active:
        raise AuthenticationFailed(
            _("The user of this token does not exist or is inactive."), code="user_inactive"
        )
    if user.tenant_id != claims.get("tenant_id") or not user.tenant.is_active:
        raise AuthenticationFailed(
            _("The tenant of this token does not match or is inactive."), code="tenant_mismatch"
        )
    if check_version and claims.get(VERSION_CLAIM) != token_version_claim(user):
        raise AuthenticationFailed(
            _("This token was revoked (password change, logout or deactivation). Log in again."),
            code="token_revoked",
        )
    return user


def _valid_refresh(raw: str) -> tuple[RefreshToken, User]:
    try:
        refresh = RefreshToken(raw)
    except TokenError as exc:
        raise invalid_token(str(exc)) from exc
    user_id = id_claim(refresh.payload, "user_id")
    id_claim(refresh.payload, "tenant_id")
    user = User.objects.with_tenant(user_id)
    check_user_may_use(user, refresh.payload)
    if RevokedToken.objects.filter(jti=str(refresh.payload.get("jti"))).exists():
        raise AuthenticationFailed(_("This refresh token was revoked. Log in again."), code="token_revoked")
    return refresh, user


def access_token_refresh(*, raw_refresh: str) -> str:
    """A new access token for a refresh token that is valid, unrevoked and still its user's."""
    refresh, _user = _valid_refresh(raw_refresh)
    return str(refresh.access_token)


def refresh_token_revoke(*, raw_refresh: str, everywhere: bool = False) -> None:
    """Logout: revoke this refresh token, or every token of its user (`everywhere`)."""
    refresh, user = _valid_refresh(raw_refresh)
    if everywhere:
        User.objects.filter(id=user.id).update(token_version=F("token_version") + 1)
        return
    expires_at = datetime.fromtimestamp(refresh.payload["exp"], tz=UTC)
    try:
        with transaction.atomic():
            RevokedToken.objects.create(jti=str(refresh.payload["jti"]), expires_at=expires_at)
    except IntegrityError:
        pass  # revoked twice at once: the outcome is the same


def revoked_tokens_purge() -> int:
    deleted, _ = RevokedToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
