"""JWT authentication that knows tenants.

Our own tokens (HS256, `user_id` + `tenant_id` + `ver` claims) are tried first; when an
external AuthMS verifying key is configured, tokens signed by it are accepted too. Every
claim is checked for type and shape before it reaches a query; the token's `tenant_id`
must match the user's tenant, and inactive tenants and revoked tokens are refused.
"""

from collections.abc import Callable

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import InvalidToken, TokenBackendError, TokenError
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import aware_utcnow

from authms.models import User
from authms.services import user_get_or_provision
from authms.tokens import check_user_may_use, id_claim, invalid_token


class ExternalToken(dict):
    """Claims of a token issued by an external AuthMS."""


def external_token_checked(claims) -> ExternalToken:
    """An external issuer's token must expire and be an access token, whatever it signs."""
    if not isinstance(claims, dict) or "exp" not in claims:
        raise invalid_token(_("Token has no expiry (exp claim)."))
    if claims.get("token_type", "access") != "access":
        raise invalid_token(_("Only access tokens are accepted here."))
    id_claim(claims, "user_id")
    id_claim(claims, "tenant_id")
    return ExternalToken(claims)


class VerifiedTokens:
    """Our access tokens whose signature and claims were checked, by their exact bytes.

    A client sends the same access token with every request of its lifetime (15 minutes),
    and PyJWT's checks cost about 0.2 ms of Python each time, as much as a query. A token
    found here was verified in full before, under the same settings (any settings change
    empties this), so only its expiry is checked again. Nothing about the user is kept:
    activity, tenant and revocation are read from the user row on every request.
    """

    def __init__(self, size: int):
        self.size = size
        self._tokens: dict[bytes, Token] = {}

    def get(self, raw_token: bytes) -> Token | None:
        token = self._tokens.get(raw_token)
        if token is not None:
            try:
                token.check_exp(current_time=aware_utcnow())
            except TokenError:
                self._tokens.pop(raw_token, None)
                return None  # checked again in full, to be refused with its reason
        return token

    def add(self, raw_token: bytes, token: Token) -> None:
        if len(self._tokens) >= self.size:
            self._tokens.clear()  # a bound, not an LRU: a refill costs one check per token
        self._tokens[raw_token] = token

    def clear(self, **_signal) -> None:
        self._tokens.clear()


# About 2 KB a token with its bytes (measured): 8 MB a process at most. More clients than that
# in 15 minutes only cost some of them the full check again.
verified_tokens = VerifiedTokens(size=4096)
setting_changed.connect(verified_tokens.clear, dispatch_uid="authms.verified_tokens")


class TenantJWTAuthentication(JWTAuthentication):
    def __init__(self, *args, load_user: Callable[[str], User | None] | None = None, **kwargs):
        """`load_user`: how the user (with tenant) one of our tokens names is read; a view may
        read more in the same query (the inbox badge reads its counts)."""
        super().__init__(*args, **kwargs)
        self.load_user = load_user or User.objects.with_tenant

    @cached_property
    def external_backend(self) -> TokenBackend | None:
        if not settings.EXTERNAL_JWT_VERIFYING_KEY:
            return None
        return TokenBackend(
            settings.EXTERNAL_JWT_ALGORITHM,
            verifying_key=settings.EXTERNAL_JWT_VERIFYING_KEY,
            audience=settings.EXTERNAL_JWT_AUDIENCE,
            issuer=settings.EXTERNAL_JWT_ISSUER,
        )

    def get_validated_token(self, raw_token):
        if (token := verified_tokens.get(raw_token)) is not None:
            return token
        try:
            token = super().get_validated_token(raw_token)
            verified_tokens.add(raw_token, token)
            return token
        except InvalidToken:
            if self.external_backend is None:
                raise
            try:
                claims = self.external_backend.decode(raw_token.decode())
            except (TokenBackendError, UnicodeDecodeError):
                raise invalid_token(_("Token is invalid or expired")) from None
            return external_token_checked(claims)

    def get_user(self, validated_token):
        user_id = id_claim(validated_token, "user_id")
        id_claim(validated_token, "tenant_id")
        external = isinstance(validated_token, ExternalToken)
        if external:
            user = user_get_or_provision(claims=validated_token)
        else:
            user = self.load_user(user_id)
        # The external issuer revokes its own tokens; `ver` is ours.
        return check_user_may_use(user, validated_token, check_version=not external)
