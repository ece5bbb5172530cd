import math
from functools import partial

from django.conf import settings
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.exceptions import APIException, Throttled
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from authms.api.authentication import TenantJWTAuthentication
from authms.api.cursor import cursor_page, cursor_params, rows_after
from authms.api.envelope import data_response
from authms.api.pagination import page_params, rows_at
from authms.api.schema import SimpleResponseSerializer, data_envelope, error_responses
from authms.api.serializers import (
    LoginRequestSerializer,
    LogoutRequestSerializer,
    RefreshRequestSerializer,
    TenantTokenObtainPairSerializer,
    TokenPairSerializer,
)
from authms.health import health_report
from authms.throttling import login_attempt_wait, login_succeeded
from authms.tokens import access_token_refresh, refresh_token_revoke


class PaginatedListView(GenericAPIView):
    """A list endpoint: one page of the queryset, serialized, in the list envelope.

    With `cursor_pages` (lists ordered newest first by created_at, id) a `?cursor=` asks for
    keyset pages instead of page numbers (authms.api.cursor)."""

    cursor_pages = False
    # Lists whose count may be capped say so in every page's answer (`total_is_capped`).
    capped_totals = False

    def count_rows(self, queryset) -> tuple[int, bool]:
        """The list's total, and whether it is capped (only a lower bound)."""
        return queryset.count(), False

    def rows_at(self, queryset, offset: int, size: int, *, total: int | None) -> list:
        """`size` rows from `offset` of a list of `total` rows (None: not counted yet)."""
        return rows_at(queryset, offset, size)

    def page_and_total(self, queryset, offset: int, size: int) -> tuple[list, int, bool] | None:
        """A shallow page (offset below DEFERRED_OFFSET) and the list's (total, capped) read in
        one round trip, or None: the paginator then counts and reads on its own."""
        return None

    def cursor_rows(self, queryset, position: tuple | None, limit: int) -> list:
        """A cursor page's rows (authms.api.cursor.rows_after). These hooks take whatever the
        view lists (a queryset here); a view that lists something else says how to count it,
        page it, and read it after a cursor."""
        return rows_after(queryset, position, limit)

    def list_response(self, queryset):
        params = self.request.query_params
        cursor = cursor_params(params) if self.cursor_pages else None
        if cursor is not None:
            _page, size = page_params(params)  # cursor_params refused any `page`
            return Response(
                cursor_page(
                    partial(self.cursor_rows, queryset),
                    cursor=cursor,
                    size=size,
                    serialize=lambda rows: self.get_serializer(rows, many=True).data,
                )
            )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class _AnonymousView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        # Without it DRF would turn bad credentials (401) into 403.
        return 'Bearer realm="api"'


def _token_response(*, access: str, refresh: str):
    return data_response(
        {
            "access": access,
            "refresh": refresh,
            "token_type": "Bearer",
            "expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        }
    )


_TOKEN_RESPONSES = error_responses(data_envelope("TokenPairResponse", TokenPairSerializer()), 400, 401, 429)


class TokenObtainView(_AnonymousView):
    @extend_schema(
        operation_id="auth_token_obtain",
        summary="Obtain an access/refresh token pair",
        description="Attempts are limited per client address, per username and service-wide "
        "(429 with Retry-After). Keep the pair and refresh the access token instead of "
        "logging in again: each login costs a deliberate ~0.2 s of password hashing.",
        request=LoginRequestSerializer,
        responses=_TOKEN_RESPONSES,
        tags=["auth"],
    )
    def post(self, request):
        credentials = LoginRequestSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        username = credentials.validated_data["username"]
        if wait := login_attempt_wait(request=request, username=username):
            raise Throttled(wait=math.ceil(wait))
        serializer = TenantTokenObtainPairSerializer(
            data=credentials.validated_data, context={"request": request}
        )
        serializer.is_valid(raise_exception=True)
        login_succeeded(username=username)
        tokens = serializer.validated_data
        return _token_response(access=tokens["access"], refresh=tokens["refresh"])


class TokenRefreshView(_AnonymousView):
    @extend_schema(
        operation_id="auth_token_refresh",
        summary="Exchange a refresh token for a new access token",
        description="401 once the refresh token is expired or revoked: by logout, a password "
        "change or the user's deactivation.",
        request=RefreshRequestSerializer,
        responses=_TOKEN_RESPONSES,
        tags=["auth"],
    )
    def post(self, request):
        serializer = RefreshRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        raw = serializer.validated_data["refresh"]
        return _token_response(access=access_token_refresh(raw_refresh=raw), refresh=raw)


class LogoutView(_AnonymousView):
    @extend_schema(
        operation_id="auth_logout",
        summary="Revoke a refresh token (logout)",
        description="Revokes the refresh token at once; access tokens it issued end with their "
        "short lifetime. `everywhere: true` revokes every token of the user, access tokens "
        "included, on all devices.",
        request=LogoutRequestSerializer,
        responses=error_responses(data_envelope("LogoutResponse", serializers.DictField()), 400, 401),
        tags=["auth"],
    )
    def post(self, request):
        serializer = LogoutRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refresh_token_revoke(
            raw_refresh=serializer.validated_data["refresh"],
            everywhere=serializer.validated_data["everywhere"],
        )
        return data_response({"revoked": True}, message=_("Logged out."))


def _may_see_health_details(request) -> bool:
    """Staff with a valid token, or a probe sending HEALTH_DETAIL_TOKEN as X-Health-Token."""
    probe_token = settings.HEALTH_DETAIL_TOKEN
    if probe_token and constant_time_compare(request.headers.get("X-Health-Token", ""), probe_token):
        return True
    try:
        authenticated = TenantJWTAuthentication().authenticate(request)
    except APIException:
        return False
    return authenticated is not None and authenticated[0].is_staff


class HealthView(_AnonymousView):
    @extend_schema(
        operation_id="health",
        summary="Liveness and dependency status",
        description="Anonymous callers get `status` only. Staff (with a token) and probes sending "
        "`X-Health-Token` also get each dependency's check (database, cache, broker).",
        responses={
            200: OpenApiResponse(
                data_envelope("HealthResponse", serializers.DictField()), description="Healthy."
            ),
            503: OpenApiResponse(
                SimpleResponseSerializer, description="A dependency is failing; staff see which in `data`."
            ),
        },
        tags=["health"],
    )
    def get(self, request):
        healthy, report = health_report()
        if not _may_see_health_details(request):
            report = {"status": report["status"]}
        return data_response(
            report,
            message=_("OK") if healthy else _("One or more dependencies are unavailable."),
            status_code=200 if healthy else 503,
        )


class _JsonErrorsMixin:
    """Errors leave as the JSON envelope even from views that render YAML or HTML."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaView(_JsonErrorsMixin, SpectacularAPIView):
    pass


class SwaggerView(_JsonErrorsMixin, SpectacularSwaggerView):
    pass
