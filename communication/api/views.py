from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView

from authms.api.schema import error_responses
from communication import selectors
from communication.api.serializers import CommunicationLogSerializer
from communication.models import Channel, Status

_FILTER_PARAMETERS = [
    OpenApiParameter("channel", str, enum=Channel.values, description="Channel filter."),
    OpenApiParameter("status", str, enum=Status.values, description="Status filter."),
    OpenApiParameter("batch_id", str, description="Only logs of this bulk batch (bat_…)."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="RFC 3339; inclusive."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="RFC 3339; exclusive."),
]


class _LogListView(GenericAPIView):
    serializer_class = CommunicationLogSerializer

    def list_response(self, queryset):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class CommunicationLogListView(_LogListView):
    @extend_schema(
        operation_id="communication_logs_list",
        summary="List my communication logs",
        description="The caller's own logs in the current tenant, newest first. A tenant admin "
        "may pass `user_id` to read another user of the same tenant.",
        parameters=[
            OpenApiParameter("user_id", str, description="Defaults to the caller (usr_…)."),
            *_FILTER_PARAMETERS,
        ],
        responses=error_responses(CommunicationLogSerializer(many=True), 400, 401, 403),
        tags=["communication"],
    )
    def get(self, request):
        params = request.query_params
        queryset = selectors.log_list_for_user(
            actor=request.user, user_id=params.get("user_id"), filters=params
        )
        return self.list_response(queryset)


class AdminCommunicationLogListView(_LogListView):
    @extend_schema(
        operation_id="admin_communication_logs_list",
        summary="List communication logs of the tenant (admins)",
        description="Tenant admins: every log of their tenant. Platform admins: every tenant, "
        "optionally narrowed by `tenant_id`.",
        parameters=[
            OpenApiParameter("user_id", str, description="Only this user's logs (absent = everyone)."),
            OpenApiParameter("tenant_id", str, description="Platform admins: only this tenant."),
            OpenApiParameter("recipient", str, description="Exact, unmasked recipient."),
            OpenApiParameter("provider", str, description="e.g. submail, smtp, console."),
            *_FILTER_PARAMETERS,
        ],
        responses=error_responses(CommunicationLogSerializer(many=True), 400, 401, 403),
        tags=["communication"],
    )
    def get(self, request):
        queryset = selectors.log_list_for_admin(actor=request.user, filters=request.query_params)
        return self.list_response(queryset)
