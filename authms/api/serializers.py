from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from authms.api.fields import StrictCharField
from authms.tokens import token_for


class TenantTokenObtainPairSerializer(TokenObtainPairSerializer):
    """Our claims (`tenant_id`, `ver`) on the token pair; refreshed access tokens inherit them."""

    @classmethod
    def get_token(cls, user):
        return token_for(user)


class LoginRequestSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=4096, trim_whitespace=False)


class RefreshRequestSerializer(serializers.Serializer):
    refresh = StrictCharField(max_length=4096)


class LogoutRequestSerializer(RefreshRequestSerializer):
    everywhere = serializers.BooleanField(
        default=False, help_text="Revoke every token of the user (all devices), access tokens included."
    )


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Access token lifetime in seconds.")
