"""JWT authentication that knows tenants.

Our own tokens (HS256, `user_id` + `tenant_id` + `ver` claims) are tried first; when an
external AuthMS verifying key is configured, tokens signed by it are accepted too. Every
claim is checked for type and shape before it reaches a query; the token's `tenant_id`
must match the user's tenant, and inactive tenants and revoked tokens are refused.
"""

from django.conf import settings
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import InvalidToken, TokenBackendError

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


class TenantJWTAuthentication(JWTAuthentication):
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
        try:
            return super().get_validated_token(raw_token)
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
            user = User.objects.select_related("tenant").filter(id=user_id).first()
        # The external issuer revokes its own tokens; `ver` is ours.
        return check_user_may_use(user, validated_token, check_version=not external)
