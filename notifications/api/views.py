from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.views import APIView

from authms.api.authentication import TenantJWTAuthentication
from authms.api.cursor import page_or_cursor_parameters, page_or_cursor_schema
from authms.api.envelope import data_response
from authms.api.schema import data_envelope, error_responses
from authms.api.views import PaginatedListView
from authms.errors import NotFoundError, PermissionDeniedError, ValidationError
from authms.models import Tenant
from notifications import selectors, services
from notifications.api.serializers import AdminNotifySerializer, NotificationSerializer
from notifications.live import stream_token
from notifications.models import NotificationType, Priority

_NOT_FOUND = error_responses(data_envelope("NotificationResponse", NotificationSerializer()), 401, 404)


def reader_language(request) -> str:
    """Notices render in the reader's language: their profile's, else the request's
    Accept-Language, else their tenant's, else LANGUAGE_CODE."""
    user = request.user
    if user.language:
        return user.language
    if request.META.get("HTTP_ACCEPT_LANGUAGE"):
        return translation.get_language_from_request(request)
    return user.tenant.language or settings.LANGUAGE_CODE  # the tenant came with the user (authentication)


class InReadersLanguage:
    """Answers (notices and messages alike) in the reader's language, once authenticated."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        translation.activate(reader_language(request))


class NotificationListView(InReadersLanguage, PaginatedListView):
    serializer_class = NotificationSerializer
    cursor_pages = True

    @extend_schema(
        operation_id="notifications_list",
        summary="My in-app notifications, newest first",
        description="Page numbers (`page`, `page_size`) as the seed documents, or `cursor` (empty for "
        "the first page, then each answer's `next_cursor`): stable while new items arrive, the same "
        "cost at any depth; the answer then has `next_cursor` and `has_more` instead of totals.",
        parameters=[
            OpenApiParameter(
                "status", str, enum=selectors.STATUSES, description="Default: all but archived."
            ),
            OpenApiParameter("unread_only", OpenApiTypes.BOOL, description="true/false/1/0."),
            OpenApiParameter("type", str, enum=NotificationType.values),
            OpenApiParameter("priority", str, enum=Priority.values),
            *page_or_cursor_parameters(),
        ],
        responses=error_responses(page_or_cursor_schema(NotificationSerializer, "Notification"), 400, 401),
        tags=["notifications"],
    )
    def get(self, request):
        return self.list_response(selectors.notification_list(user=request.user, params=request.query_params))


_COUNTS = data_envelope("InboxCountsResponse", serializers.DictField(child=serializers.IntegerField()))


class UnreadCountView(APIView):
    def get_authenticators(self):
        # The badge is polled more than anything else: its counts come with the user row, so
        # a poll is one query after the token's check.
        return [TenantJWTAuthentication(load_user=selectors.user_with_inbox_counts)]

    @extend_schema(
        operation_id="notifications_unread_count",
        summary="How many of my notifications are unread, and unseen (the bell's badge)",
        responses=error_responses(_COUNTS, 401),
        tags=["notifications"],
    )
    def get(self, request):
        return data_response(selectors.notification_counts(user=request.user))


class StreamTokenView(APIView):
    @extend_schema(
        operation_id="notifications_stream_token",
        summary="A short-lived token to open my live stream with EventSource (which cannot send headers)",
        description="Open `GET /api/v1/notifications/stream?token=…` within `expires_in` seconds; the "
        "stream then stays open. The stream sends Server-Sent Events: `counts`, `notification` "
        "(resumable with Last-Event-ID), `reset`, and keep-alive comments.",
        request=None,
        responses=error_responses(
            data_envelope(
                "StreamTokenResponse",
                inline_serializer(
                    name="StreamToken",
                    fields={"token": serializers.CharField(), "expires_in": serializers.IntegerField()},
                ),
            ),
            401,
        ),
        tags=["notifications"],
    )
    def post(self, request):
        return data_response(
            {"token": stream_token(request.user), "expires_in": settings.NOTIFICATION_STREAM_TOKEN_TTL}
        )


class SeenView(APIView):
    @extend_schema(
        operation_id="notifications_mark_seen",
        summary="The bell was opened: mark my notifications seen (up to one, or all)",
        request=inline_serializer(
            name="SeenRequest",
            fields={"up_to": serializers.CharField(required=False, help_text="ntf_…: the newest shown.")},
        ),
        responses=error_responses(data_envelope("SeenResponse", serializers.DictField()), 400, 401, 404),
        tags=["notifications"],
    )
    def post(self, request):
        up_to_id = request.data.get("up_to") if isinstance(request.data, dict) else None
        if up_to_id is not None and not isinstance(up_to_id, str):
            raise ValidationError.for_field("up_to", _("A notification id (ntf_…)."))
        up_to = selectors.notification_get(user=request.user, notification_id=up_to_id) if up_to_id else None
        updated = services.notifications_mark_seen(user=request.user, up_to=up_to)
        return data_response({"updated": updated, **selectors.notification_counts(user=request.user)})


class ArchiveView(InReadersLanguage, APIView):
    archived = True

    @extend_schema(
        operation_id="notifications_archive",
        summary="Archive one of my notifications (out of the list and the counts; idempotent)",
        request=None,
        responses=_NOT_FOUND,
        tags=["notifications"],
    )
    def post(self, request, notification_id):
        notification = selectors.notification_get(user=request.user, notification_id=notification_id)
        notification = services.notification_archive(notification=notification, archived=self.archived)
        return data_response(NotificationSerializer(notification).data)


class UnarchiveView(ArchiveView):
    archived = False

    @extend_schema(
        operation_id="notifications_unarchive",
        summary="Bring an archived notification back",
        request=None,
        responses=_NOT_FOUND,
        tags=["notifications"],
    )
    def post(self, request, notification_id):
        return super().post(request, notification_id)


class ArchiveReadView(APIView):
    @extend_schema(
        operation_id="notifications_archive_read",
        summary="Archive all my read notifications",
        request=None,
        responses=error_responses(data_envelope("ArchiveReadResponse", serializers.DictField()), 401),
        tags=["notifications"],
    )
    def post(self, request):
        return data_response({"updated": services.notifications_archive_read(user=request.user)})


class NotificationDetailView(InReadersLanguage, APIView):
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


class NotificationReadView(InReadersLanguage, APIView):
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
