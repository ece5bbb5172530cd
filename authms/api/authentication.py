"""JWT authentication that knows tenants.

Our own tokens (HS256, `user_id` + `tenant_id` claims) are tried first; when an
external AuthMS verifying key is configured, tokens signed by it are accepted too.
The token's `tenant_id` must match the user's tenant, and inactive tenants are refused.
"""

from django.conf import settings
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import (
    AuthenticationFailed,
    InvalidToken,
    TokenBackendError,
)

from authms.models import User
from authms.services import user_get_or_provision


class ExternalToken(dict):
    """Claims of a token issued by an external AuthMS."""


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
                return ExternalToken(self.external_backend.decode(raw_token.decode()))
            except (TokenBackendError, UnicodeDecodeError):
                raise InvalidToken(
                    {"detail": "Token is invalid", "messages": [{"message": "Token is invalid or expired"}]}
                ) from None

    def get_user(self, validated_token):
        user_id = validated_token.get("user_id")
        tenant_id = validated_token.get("tenant_id")
        if not user_id or not tenant_id:
            raise InvalidToken(_("Token carries no user_id/tenant_id claims."))
        if isinstance(validated_token, ExternalToken):
            user = user_get_or_provision(claims=validated_token)
        else:
            user = User.objects.select_related("tenant").filter(id=user_id).first()
        if user is None or not user.is_active:
            raise AuthenticationFailed(
                _("The user of this token does not exist or is inactive."), code="user_inactive"
            )
        if user.tenant_id != tenant_id or not user.tenant.is_active:
            raise AuthenticationFailed(
                _("The tenant of this token does not match or is inactive."), code="tenant_mismatch"
            )
        return user
