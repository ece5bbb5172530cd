from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from authms.api.envelope import data_response
from authms.api.schema import SimpleResponseSerializer, data_envelope, error_responses
from authms.api.serializers import TenantTokenObtainPairSerializer, TokenPairSerializer
from authms.health import health_report


class PaginatedListView(GenericAPIView):
    """A list endpoint: one page of the queryset, serialized, in the list envelope."""

    def list_response(self, queryset):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class _TokenView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    serializer_class: type[serializers.Serializer]

    def get_authenticate_header(self, request):
        # Without it DRF would turn bad credentials (401) into 403.
        return 'Bearer realm="api"'

    def post(self, request):
        serializer = self.serializer_class(data=request.data, context={"request": request})
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken({"detail": str(exc), "messages": [{"message": str(exc)}]}) from exc
        tokens = serializer.validated_data
        return data_response(
            {
                "access": tokens["access"],
                "refresh": tokens.get("refresh", request.data.get("refresh")),
                "token_type": "Bearer",
                "expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
            }
        )


_TOKEN_RESPONSES = error_responses(data_envelope("TokenPairResponse", TokenPairSerializer()), 400, 401)


@extend_schema_view(
    post=extend_schema(
        operation_id="auth_token_obtain",
        summary="Obtain an access/refresh token pair",
        request=TenantTokenObtainPairSerializer,
        responses=_TOKEN_RESPONSES,
        tags=["auth"],
    )
)
class TokenObtainView(_TokenView):
    serializer_class = TenantTokenObtainPairSerializer


@extend_schema_view(
    post=extend_schema(
        operation_id="auth_token_refresh",
        summary="Exchange a refresh token for a new access token",
        request=TokenRefreshSerializer,
        responses=_TOKEN_RESPONSES,
        tags=["auth"],
    )
)
class TokenRefreshView(_TokenView):
    serializer_class = TokenRefreshSerializer


class HealthView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        summary="Database, cache and broker status",
        responses={
            200: OpenApiResponse(
                data_envelope("HealthResponse", serializers.DictField()), description="Healthy."
            ),
            503: OpenApiResponse(
                SimpleResponseSerializer, description="A dependency is failing; `data` says which."
            ),
        },
        tags=["health"],
    )
    def get(self, request):
        healthy, report = health_report()
        return data_response(
            report,
            message=_("OK") if healthy else _("One or more dependencies are unavailable."),
            status_code=200 if healthy else 503,
        )
