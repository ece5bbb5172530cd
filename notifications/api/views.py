from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from authms.api.envelope import data_response
from authms.api.schema import data_envelope, error_responses
from authms.api.views import PaginatedListView
from authms.errors import NotFoundError, PermissionDeniedError
from authms.models import Tenant
from notifications import selectors, services
from notifications.api.serializers import AdminNotifySerializer, NotificationSerializer
from notifications.models import NotificationType, Priority

_NOT_FOUND = error_responses(data_envelope("NotificationResponse", NotificationSerializer()), 401, 404)


class NotificationListView(PaginatedListView):
    serializer_class = NotificationSerializer

    @extend_schema(
        operation_id="notifications_list",
        summary="My in-app notifications, newest first",
        parameters=[
            OpenApiParameter("unread_only", OpenApiTypes.BOOL, description="true/false/1/0."),
            OpenApiParameter("type", str, enum=NotificationType.values),
            OpenApiParameter("priority", str, enum=Priority.values),
        ],
        responses=error_responses(NotificationSerializer(many=True), 400, 401),
        tags=["notifications"],
    )
    def get(self, request):
        return self.list_response(selectors.notification_list(user=request.user, params=request.query_params))


class UnreadCountView(APIView):
    @extend_schema(
        operation_id="notifications_unread_count",
        summary="How many of my notifications are unread",
        responses=error_responses(
            data_envelope("UnreadCountResponse", serializers.DictField(child=serializers.IntegerField())), 401
        ),
        tags=["notifications"],
    )
    def get(self, request):
        return data_response({"unread": selectors.notification_unread_count(user=request.user)})


class NotificationDetailView(APIView):
    @extend_schema(
        operation_id="notifications_get",
        summary="One of my notifications",
        responses=_NOT_FOUND,
        tags=["notifications"],
    )
    def get(self, request, notification_id):
        notification = selectors.notification_get(user=request.user, notification_id=notification_id)
        return data_response(NotificationSerializer(notification).data)

    @extend_schema(
        operation_id="notifications_delete",
        summary="Delete one of my notifications",
        responses=error_responses(data_envelope("DeletedResponse", serializers.DictField()), 401, 404),
        tags=["notifications"],
    )
    def delete(self, request, notification_id):
        notification = selectors.notification_get(user=request.user, notification_id=notification_id)
        services.notification_delete(notification=notification)
        return data_response({"deleted": notification_id}, message=_("Deleted."))


class NotificationReadView(APIView):
    @extend_schema(
        operation_id="notifications_mark_read",
        summary="Mark one of my notifications read (idempotent)",
        request=None,
        responses=_NOT_FOUND,
        tags=["notifications"],
    )
    def post(self, request, notification_id):
        notification = selectors.notification_get(user=request.user, notification_id=notification_id)
        notification = services.notification_mark_read(notification=notification)
        return data_response(NotificationSerializer(notification).data)


class ReadAllView(APIView):
    @extend_schema(
        operation_id="notifications_mark_all_read",
        summary="Mark all my notifications read",
        request=None,
        responses=error_responses(
            data_envelope("ReadAllResponse", serializers.DictField(child=serializers.IntegerField())), 401
        ),
        tags=["notifications"],
    )
    def post(self, request):
        return data_response({"updated": services.notifications_mark_all_read(user=request.user)})


class AdminNotificationCreateView(APIView):
    @extend_schema(
        operation_id="admin_notifications_create",
        summary="Send a notification to a user, a list of users, or a whole tenant (admins)",
        request=AdminNotifySerializer,
        responses=error_responses(
            data_envelope("NotifyResponse", serializers.DictField(child=serializers.IntegerField())),
            400,
            401,
            403,
            404,
            success_status=201,
        ),
        tags=["notifications"],
    )
    def post(self, request):
        actor = request.user
        if not actor.is_tenant_admin:
            raise PermissionDeniedError(_("Only tenant or platform administrators may send notifications."))
        serializer = AdminNotifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tenant_id = data.pop("tenant_id", None) or actor.tenant_id
        if tenant_id != actor.tenant_id:
            if not actor.is_platform_admin:
                raise PermissionDeniedError(_("Tenant admins may only notify their own tenant."))
            if not Tenant.objects.filter(id=tenant_id).exists():
                raise NotFoundError(_("No tenant %(id)r.") % {"id": tenant_id})
        audience = data.pop("audience")
        user_id, user_ids = data.pop("user_id", None), data.pop("user_ids", None)
        created = services.notify(
            tenant_id=tenant_id,
            user_ids=[user_id] if audience == "user" else user_ids,
            whole_tenant=audience == "tenant",
            **data,
        )
        return data_response({"created": created}, message=_("Created."), status_code=201)
