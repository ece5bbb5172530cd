from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer, StaticHTMLRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from authms.api.cursor import page_or_cursor_parameters, page_or_cursor_schema
from authms.api.envelope import data_response, envelope, list_envelope
from authms.api.pagination import list_envelope_schema
from authms.api.parsers import FORM_AND_JSON_PARSERS, JSONParser
from authms.api.schema import data_envelope, error_responses
from authms.api.views import PaginatedListView
from authms.errors import NotFoundError, PermissionDeniedError, ValidationError
from authms.idempotency import request_fingerprint, run_idempotent
from authms.throttling import PerUserRateThrottle, acquire_slot
from communication import selectors, services, tasks
from communication.api.serializers import (
    BatchSerializer,
    BulkSendRequestSerializer,
    CancelRequestSerializer,
    CommunicationLogSerializer,
    DeliveryControlsSerializer,
    DeviceRegisterSerializer,
    DeviceSerializer,
    PreferencesSerializer,
    PreferencesUpdateSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
    WebhookRecoverSerializer,
    WebhookSecretSerializer,
)
from communication.events_feed import FEED_LIMIT, event_get, feed_page
from communication.models import Channel, Event, Status, StatusDetail
from communication.services.events import events_sequence
from communication.services.reconcile import reconcile_push
from communication.services.usage import usage_overview
from communication.unsubscribe import read_unsubscribe_token
from providers import submail
from providers.base import InvalidReceipt
from providers.registry import provider_by_name

_FILTER_PARAMETERS = [
    OpenApiParameter("channel", str, enum=Channel.values, description="Channel filter."),
    OpenApiParameter("status", str, enum=Status.values, description="Status filter."),
    OpenApiParameter("status_detail", str, enum=StatusDetail.values, description="Finer state filter."),
    OpenApiParameter("batch_id", str, description="Only logs of this bulk batch (bat_…)."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="RFC 3339; inclusive."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="RFC 3339; exclusive."),
    *page_or_cursor_parameters(),
]
_LOG_PAGE_OR_CURSOR_PAGE = page_or_cursor_schema(
    CommunicationLogSerializer,
    "CommunicationLog",
    page_name="PaginatedCommunicationLogList",
    total_is_capped=serializers.BooleanField(
        help_text="true: `total` is a floor (LOG_LIST_COUNT_CAP, default 10,000), the list has more."
    ),
)


class _LogListView(PaginatedListView):
    serializer_class = CommunicationLogSerializer
    cursor_pages = True
    capped_totals = True

    def count_rows(self, log_list) -> tuple[int, bool]:
        return selectors.log_list_total(log_list)

    def rows_at(self, log_list, offset: int, size: int, *, total: int | None) -> list:
        return log_list.rows(offset, size)

    def page_and_total(self, log_list, offset: int, size: int) -> tuple[list, int, bool]:
        return selectors.log_page_and_total(log_list, offset=offset, size=size)

    def cursor_rows(self, log_list, position, limit: int) -> list:
        return log_list.rows_after(position, limit)


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
        responses=error_responses(_LOG_PAGE_OR_CURSOR_PAGE, 400, 401, 403),
        tags=["communication"],
    )
    def get(self, request):
        params = request.query_params
        log_list = selectors.log_list_for_user(
            actor=request.user, user_id=params.get("user_id"), filters=params
        )
        return self.list_response(log_list)


class AdminCommunicationLogListView(_LogListView):
    def rows_at(self, log_list, offset: int, size: int, *, total: int | None) -> list:
        rows = selectors.log_rows_at(log_list, offset=offset, size=size, total=total)
        return rows if rows is not None else super().rows_at(log_list, offset, size, total=total)

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
        responses=error_responses(_LOG_PAGE_OR_CURSOR_PAGE, 400, 401, 403),
        tags=["communication"],
    )
    def get(self, request):
        log_list = selectors.log_list_for_admin(actor=request.user, filters=request.query_params)
        return self.list_response(log_list)


class BulkSendThrottle(PerUserRateThrottle):
    """Per-user limit on bulk requests, read from `BULK_THROTTLE_RATE` (default 60/min), counted atomically."""

    scope = "bulk_send"

    def get_rate(self):
        return settings.BULK_THROTTLE_RATE


class BulkBusy(APIException):
    """Every bulk slot of the deployment is taken: expanding another 10,000 recipients now
    would take web threads from everyone else. Nothing was written; retry after the wait."""

    status_code = 503
    default_detail = gettext_lazy("Too many bulk sends are being prepared right now; retry in a moment.")
    default_code = "bulk_busy"
    wait = 2


class BulkSendView(APIView):
    throttle_classes = [BulkSendThrottle]

    @extend_schema(
        operation_id="communication_bulk_send",
        summary="Send one SMS or email text to many recipients",
        description="Creates one log per distinct recipient (invalid or suppressed recipients get a "
        "`failed` log saying why) in one transaction and sends them in the background. "
        "Send `Idempotency-Key` to make retries safe. `Prefer: return=minimal` answers without "
        "`items` (just `total` and `batch_id`). 503 with Retry-After when the deployment is "
        "already preparing BULK_CONCURRENCY bulks; nothing was written.",
        request=BulkSendRequestSerializer,
        parameters=[
            OpenApiParameter(
                "Prefer",
                str,
                OpenApiParameter.HEADER,
                description="`return=minimal`: answer without `items` (saves serialising every log).",
            ),
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
                OpenApiParameter.HEADER,
                description="Repeat within 24 h with the same body → the original response; another body → 409.",
            ),
        ],
        responses=error_responses(
            OpenApiResponse(
                list_envelope_schema(
                    CommunicationLogSerializer, "BulkSendResponse", batch_id={"type": "string"}
                ),
                description="Every created log, in request order.",
            ),
            400,
            401,
            403,
            404,
            409,
            429,
            503,
        ),
        tags=["communication"],
    )
    def post(self, request):
        release = acquire_slot(
            "bulk-send",
            slots=settings.BULK_CONCURRENCY,
            per_process=settings.BULK_CONCURRENCY_PER_PROCESS,
            lease_seconds=120,
        )
        if release is None:
            raise BulkBusy()
        try:
            return self._send(request)
        finally:
            release()

    def _send(self, request):
        serializer = BulkSendRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        minimal = "return=minimal" in request.headers.get("Prefer", "").replace(" ", "").lower()

        def send():
            result = services.bulk_send(actor=request.user, **serializer.validated_data)
            items = [] if minimal else CommunicationLogSerializer(result.logs, many=True).data
            total = len(result.logs)
            return 200, list_envelope(
                items=items, total=total, page=1, page_size=total, batch_id=result.batch.id
            )

        status_code, body = run_idempotent(
            actor=request.user,
            key=request.headers.get("Idempotency-Key"),
            fingerprint=request_fingerprint("POST", request.path, request.data),
            produce=send,
        )
        headers = {"Preference-Applied": "return=minimal"} if minimal else {}
        return Response(body, status=status_code, headers=headers)


class BatchDetailView(APIView):
    @extend_schema(
        operation_id="communication_batch_progress",
        summary="Progress of a bulk batch",
        responses=error_responses(data_envelope("BatchResponse", BatchSerializer()), 401, 404),
        tags=["communication"],
    )
    def get(self, request, batch_id):
        progress = selectors.batch_progress(actor=request.user, batch_id=batch_id)
        return data_response(BatchSerializer(progress).data)


_CANCEL_RESPONSE = error_responses(
    data_envelope(
        "CancelResponse",
        serializers.DictField(child=serializers.IntegerField(), help_text="cancelled, already_left"),
    ),
    400,
    401,
    404,
)


def _cancel_response(result):
    return data_response(
        {"cancelled": result.cancelled, "already_left": result.already_left},
        message=_("%(cancelled)d cancelled; %(left)d had already left.")
        % {"cancelled": result.cancelled, "left": result.already_left},
    )


class BatchCancelView(APIView):
    @extend_schema(
        operation_id="communication_batch_cancel",
        summary="Cancel what a batch has not handed to a provider yet",
        description="Pending logs (scheduled, queued, waiting for a retry) become failed with "
        "status_detail cancelled; logs already handed to a provider are counted in already_left.",
        request=None,
        responses=_CANCEL_RESPONSE,
        tags=["communication"],
    )
    def post(self, request, batch_id):
        batch = selectors.batch_get(actor=request.user, batch_id=batch_id)
        return _cancel_response(services.batches_cancel(actor=request.user, batches=[batch]))


class CancelByKeyView(APIView):
    @extend_schema(
        operation_id="communication_cancel_by_key",
        summary="Cancel every batch sent with a cancellation_key",
        request=CancelRequestSerializer,
        responses=_CANCEL_RESPONSE,
        tags=["communication"],
    )
    def post(self, request):
        serializer = CancelRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = serializer.validated_data["cancellation_key"]
        batches = selectors.batches_by_cancellation_key(actor=request.user, key=key)
        if not batches:
            raise NotFoundError(_("No batch with cancellation_key %(key)r.") % {"key": key})
        return _cancel_response(services.batches_cancel(actor=request.user, batches=batches))


class UnsubscribeView(APIView):
    """RFC 8058 one-click unsubscribe: mail clients POST; a person following the link gets a confirm page."""

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = FORM_AND_JSON_PARSERS
    renderer_classes = [JSONRenderer, StaticHTMLRenderer]

    @extend_schema(exclude=True)
    def get(self, request, token):
        claims = read_unsubscribe_token(token)
        return render(
            request,
            "communication/unsubscribe.html",
            {
                "valid": claims is not None,
                "done": False,
                "recipient": claims and claims["r"],
                "category": claims and claims.get("k", ""),
            },
            status=200 if claims else 404,
        )

    @extend_schema(
        operation_id="communication_unsubscribe",
        summary="One-click unsubscribe (List-Unsubscribe-Post)",
        description="Switches the email's category off for the address (a user's preference, else a "
        "suppression for that category); `scope=all` in the form or JSON body unsubscribes from every "
        "email of the tenant. A link of a critical (security) email can only do the latter.",
        request=None,
        responses=error_responses(data_envelope("UnsubscribeResponse", serializers.DictField()), 404),
        tags=["communication"],
    )
    def post(self, request, token):
        claims = read_unsubscribe_token(token)
        if claims is None:
            raise NotFoundError(_("This unsubscribe link is not valid."))
        category = services.unsubscribe(
            tenant_id=claims["t"],
            channel=claims["c"],
            recipient=claims["r"],
            category=claims.get("k", ""),
            everything=request.data.get("scope") == "all",
        )
        if request.accepted_renderer.format == "html":
            return render(
                request,
                "communication/unsubscribe.html",
                {"valid": True, "done": True, "recipient": claims["r"], "category": category},
            )
        message = (
            _("You will not receive %(category)s emails any more.") % {"category": category}
            if category
            else _("You will not receive these messages any more.")
        )
        return data_response({"unsubscribed": True, "category": category or "all"}, message=message)


class SubmailSubhookView(APIView):
    """SUBMAIL's push reports (SUBHOOK). Authenticated by md5(token + SUBHOOK key), not a JWT."""

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = FORM_AND_JSON_PARSERS

    @extend_schema(
        operation_id="submail_subhook",
        summary="SUBMAIL SUBHOOK receiver",
        description="Configure this URL in the SUBMAIL console (SMS → SUBHOOK) with the events "
        "delivered, dropped, sending and mo. Requests are verified with `SUBMAIL_SUBHOOK_KEY`; "
        "a token seen before with other fields is refused (403), an identical redelivery is "
        "acknowledged with `duplicate: true` and applied once.",
        request=None,
        responses=error_responses(data_envelope("SubhookResponse", serializers.DictField()), 400, 403),
        tags=["providers"],
    )
    def post(self, request):
        data = request.data
        try:
            token, signature = submail.subhook_credentials(data)
            if not submail.subhook_signature_valid(
                token=token, signature=signature, key=settings.SUBMAIL_SUBHOOK_KEY
            ):
                raise PermissionDeniedError(_("Invalid SUBHOOK signature."))
            event = submail.parse_subhook(data)
        except InvalidReceipt as exc:
            raise ValidationError(str(exc)) from None
        result = {"event": event.event, "applied": 0, "reconciled": 0, "suppressed": 0, "duplicate": False}
        with transaction.atomic():
            if not services.receipt_token_claim(
                provider="submail", token=token, fingerprint=services.receipt_fingerprint(data)
            ):
                result["duplicate"] = True
            elif event.report is not None:
                result["reconciled"] = reconcile_push(
                    provider="submail",
                    reference=event.tag,
                    recipient=event.recipient,
                    provider_message_id=event.report.provider_message_id,
                )
                result["applied"] = services.reports_apply([event.report]).applied
            elif event.event == "mo":
                result["suppressed"] = services.suppress_sms_reply(
                    provider="submail", address=event.address, content=event.content
                )
        return data_response(result)


class ProviderPushView(APIView):
    """Unsigned provider pushes (Aliyun's HTTP batch receipts and replies), guarded by a
    secret path token (a wrong token or provider is a 404, a malformed body a 400). Answered
    at once with the body the provider expects."""

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    parse = ""  # the provider method that reads the body: parse_receipts or parse_replies

    def pushed(self, request, name: str, token: str):
        """(the provider, what its push says); 404 for a wrong provider or token, 400 for a bad body."""
        try:
            sender = provider_by_name(name)
        except LookupError:
            raise NotFoundError() from None
        if not sender.push_token or not constant_time_compare(token, sender.push_token):
            raise NotFoundError()
        try:
            return sender, getattr(sender, self.parse)(request.data)
        except InvalidReceipt as exc:
            raise ValidationError(str(exc)) from None


class ProviderReceiptsView(ProviderPushView):
    parse = "parse_receipts"

    @extend_schema(
        operation_id="provider_receipts",
        summary="Provider delivery receipts (push)",
        description="Aliyun: set the SmsReport HTTP push URL to `…/providers/aliyun/receipts/"
        "<ALIYUN_RECEIPT_TOKEN>`. Receipts are stored, then applied on a worker (inline when the "
        "broker is away; by the sweeper if that task is lost), forward-only, so a repeated or "
        "out-of-order push changes nothing it should not.",
        request=None,
        responses={200: OpenApiTypes.OBJECT, **error_responses(None, 400, 404)},
        tags=["providers"],
    )
    def post(self, request, provider, token):
        sender, reports = self.pushed(request, provider, token)
        if reports:
            _apply_soon(services.pushed_reports_keep(provider=sender.name, reports=reports))
        return Response(sender.push_ack or {"received": len(reports)})


class ProviderRepliesView(ProviderPushView):
    parse = "parse_replies"

    @extend_schema(
        operation_id="provider_replies",
        summary="Replies from recipients (push)",
        description="Aliyun: set the SmsUp HTTP push URL to `…/providers/aliyun/replies/<ALIYUN_RECEIPT_TOKEN>`. "
        "A reply of TD, 退订 or unsubscribe suppresses the number for every tenant that texted it.",
        request=None,
        responses={200: OpenApiTypes.OBJECT, **error_responses(None, 400, 404)},
        tags=["providers"],
    )
    def post(self, request, provider, token):
        sender, replies = self.pushed(request, provider, token)
        for reply in replies:
            services.suppress_sms_reply(provider=sender.name, address=reply.address, content=reply.content)
        return Response(sender.push_ack or {"received": len(replies)})


def _apply_soon(kept_id: int) -> None:
    try:
        tasks.apply_pushed_reports.delay(kept_id)
    except (OSError, BrokerError):
        tasks.apply_pushed_reports(kept_id)


_DEVICE_RESPONSE = data_envelope("DeviceResponse", DeviceSerializer())


class DeviceListView(PaginatedListView):
    serializer_class = DeviceSerializer

    @extend_schema(
        operation_id="devices_list",
        summary="My push devices (tenant admins: a user's, with user_id)",
        parameters=[
            OpenApiParameter("user_id", str, description="Tenant admins: the user whose devices to list.")
        ],
        responses=error_responses(DeviceSerializer(many=True), 400, 401, 403, 404),
        tags=["devices"],
    )
    def get(self, request):
        return self.list_response(
            selectors.device_list(actor=request.user, user_id=request.query_params.get("user_id") or None)
        )

    @extend_schema(
        operation_id="devices_register",
        summary="Register (or refresh) a push target: an FCM token or a Web Push subscription",
        description="Idempotent: the same token or endpoint again updates and reactivates its device "
        "(200); a new one creates a device (201). A token another user of the tenant registered moves "
        "to the caller. Tokens are masked in every answer.",
        request=DeviceRegisterSerializer,
        responses=error_responses(_DEVICE_RESPONSE, 400, 401),
        tags=["devices"],
    )
    def post(self, request):
        serializer = DeviceRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, created = services.device_register(user=request.user, **serializer.validated_data)
        return data_response(
            DeviceSerializer(device).data,
            message=_("Registered.") if created else _("Updated."),
            status_code=201 if created else 200,
        )


class DeviceDetailView(APIView):
    @extend_schema(
        operation_id="devices_get",
        summary="One push device",
        responses=error_responses(_DEVICE_RESPONSE, 401, 404),
        tags=["devices"],
    )
    def get(self, request, device_id):
        return data_response(
            DeviceSerializer(selectors.device_get(actor=request.user, device_id=device_id)).data
        )

    @extend_schema(
        operation_id="devices_delete",
        summary="Delete a push device (at logout, or a tenant admin for a user of the tenant)",
        responses=error_responses(data_envelope("DeviceDeletedResponse", serializers.DictField()), 401, 404),
        tags=["devices"],
    )
    def delete(self, request, device_id):
        device = selectors.device_get(actor=request.user, device_id=device_id)
        services.device_delete(device=device)
        return data_response({"deleted": device_id}, message=_("Deleted."))


@extend_schema_field(OpenApiTypes.NUMBER)
class _AmountField(serializers.Field):
    """A count of messages (an integer) or money (a number with up to 4 decimals)."""

    def to_representation(self, value):
        return float(value) if isinstance(value, Decimal) else value


class UsageLineSerializer(serializers.Serializer):
    channel = serializers.CharField(help_text="sms, email, push, or spend (estimated cost)")
    unit = serializers.CharField(help_text="messages, or the currency of spend (SPEND_CURRENCY)")
    period = serializers.CharField(help_text="day or month")
    starts = serializers.DateField(help_text="First day of the period (CAPS_TIME_ZONE).")
    cap = _AmountField(allow_null=True, help_text="null: no cap")
    used = _AmountField()
    remaining = _AmountField(allow_null=True)


class UsageView(APIView):
    @extend_schema(
        operation_id="admin_usage",
        summary="Sending caps and usage of the tenant, per channel, today and this month",
        parameters=[OpenApiParameter("tenant_id", str, description="Platform admins: another tenant.")],
        responses=error_responses(
            data_envelope("UsageResponse", UsageLineSerializer(many=True)), 401, 403, 404
        ),
        tags=["communication"],
    )
    def get(self, request):
        if not request.user.is_tenant_admin:
            raise PermissionDeniedError(_("Only tenant admins may read the sending usage."))
        tenant = selectors.admin_tenant_get(
            actor=request.user, tenant_id=request.query_params.get("tenant_id") or None
        )
        return data_response(UsageLineSerializer(usage_overview(tenant=tenant), many=True).data)


_PREFERENCES_RESPONSE = data_envelope("PreferencesResponse", PreferencesSerializer())
_CONTROLS_RESPONSE = data_envelope("DeliveryControlsResponse", DeliveryControlsSerializer())


class PreferencesView(APIView):
    @extend_schema(
        operation_id="preferences_get",
        summary="My preferences: every category × channel, my time zone and quiet hours",
        responses=error_responses(_PREFERENCES_RESPONSE, 401),
        tags=["preferences"],
    )
    def get(self, request):
        return data_response(PreferencesSerializer(selectors.preferences_get(user=request.user)).data)

    @extend_schema(
        operation_id="preferences_update",
        summary="Set some of my preferences, my time zone or my quiet hours",
        description="Listed choices are set, others kept. A critical category (security) cannot be "
        "switched off: 400, and nothing is changed.",
        request=PreferencesUpdateSerializer,
        responses=error_responses(_PREFERENCES_RESPONSE, 400, 401),
        tags=["preferences"],
    )
    def put(self, request):
        serializer = PreferencesUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.preferences_update(
            user=request.user,
            changes=[services.PreferenceChange(**choice) for choice in data.get("preferences", [])],
            time_zone=data.get("time_zone"),
            quiet_hours=data.get("quiet_hours"),
            language=data.get("language"),
        )
        return data_response(
            PreferencesSerializer(selectors.preferences_get(user=request.user)).data, message=_("Saved.")
        )


class DeliveryControlsView(APIView):
    """A tenant's delivery controls: tenant admins read them and set quiet hours, time zone and
    preference defaults; the sending caps are the platform admins'."""

    def _tenant(self, request):
        if not request.user.is_tenant_admin:
            raise PermissionDeniedError(_("Only tenant admins may manage delivery controls."))
        return selectors.admin_tenant_get(
            actor=request.user, tenant_id=request.query_params.get("tenant_id") or None
        )

    @extend_schema(
        operation_id="admin_delivery_controls_get",
        summary="The tenant's delivery controls (caps, quiet hours, preference defaults)",
        parameters=[OpenApiParameter("tenant_id", str, description="Platform admins: another tenant.")],
        responses=error_responses(_CONTROLS_RESPONSE, 401, 403, 404),
        tags=["preferences"],
    )
    def get(self, request):
        return data_response(DeliveryControlsSerializer(self._tenant(request)).data)

    @extend_schema(
        operation_id="admin_delivery_controls_update",
        summary="Change some of the tenant's delivery controls",
        description="Validated whole: one bad value → 400 and nothing changes. Sending caps: platform "
        "admins only (403). Each change is kept in the staff actions log.",
        parameters=[OpenApiParameter("tenant_id", str, description="Platform admins: another tenant.")],
        request=DeliveryControlsSerializer,
        responses=error_responses(_CONTROLS_RESPONSE, 400, 401, 403, 404),
        tags=["preferences"],
    )
    def patch(self, request):
        tenant = self._tenant(request)
        serializer = DeliveryControlsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        tenant = services.delivery_controls_update(
            actor=request.user, tenant=tenant, changes=serializer.validated_data
        )
        return data_response(DeliveryControlsSerializer(tenant).data, message=_("Saved."))


def _positive_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return FEED_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= FEED_LIMIT:
        raise ValidationError.for_field(
            "limit", _("limit is a whole number from 1 to %(max)d.") % {"max": FEED_LIMIT}
        )
    return int(raw)


class _EventSerializer(serializers.Serializer):
    """An event as listed and sent: `data` per type in docs/API.md."""

    id = serializers.CharField()
    type = serializers.ChoiceField(choices=Event.Type.values)
    timestamp = serializers.DateTimeField()
    tenant_id = serializers.CharField(allow_null=True)
    data = serializers.DictField()


class EventListView(APIView):
    @extend_schema(
        operation_id="events_list",
        summary="The events feed: what happened, oldest first, after a cursor",
        description="Tenant admins: the tenant's events; users: their own messages' and batches'; "
        "platform admins: any tenant's (`tenant_id`) or all, platform events included. Store "
        "`next_cursor` after processing and pass it as `after`; dedupe on `id`. A cursor older than "
        "the 30-day retention → 410.",
        parameters=[
            OpenApiParameter("after", str, description="A `next_cursor` from an earlier page."),
            OpenApiParameter("type", str, description="Comma-separated event types, e.g. message.failed,batch.completed."),
            OpenApiParameter("limit", int, description="1–100 (default 100)."),
            OpenApiParameter("tenant_id", str, description="Platform admins: one tenant."),
        ],
        responses=error_responses(
            inline_serializer(
                name="EventFeed",
                fields={
                    "code": serializers.IntegerField(), "message": serializers.CharField(),
                    "items": _EventSerializer(many=True), "next_cursor": serializers.CharField(),
                    "has_more": serializers.BooleanField(), "timestamp": serializers.DateTimeField(),
                },
            ),
            400, 401, 404, 410,
        ),
        tags=["events"],
    )  # fmt: skip
    def get(self, request):
        params = request.query_params
        events_sequence()  # what has committed so far, numbered before it is read
        page = feed_page(
            actor=request.user,
            after=params.get("after") or None,
            types=[name.strip() for name in params.get("type", "").split(",") if name.strip()],
            limit=_positive_limit(params.get("limit")),
            tenant_id=params.get("tenant_id") or None,
        )
        return Response(envelope(200, _("OK"), **page))


class EventDetailView(APIView):
    @extend_schema(
        operation_id="events_get",
        summary="One event, as the feed lists it and webhooks send it",
        responses=error_responses(data_envelope("EventResponse", _EventSerializer()), 401, 404),
        tags=["events"],
    )
    def get(self, request, event_id):
        return data_response(event_get(actor=request.user, event_id=event_id))


_ENDPOINT_RESPONSE = data_envelope("WebhookEndpointResponse", WebhookEndpointSerializer())
_SECRET_RESPONSE = data_envelope("WebhookSecretResponse", WebhookSecretSerializer())


def _with_secret(endpoint, secret: str) -> dict:
    return {**WebhookEndpointSerializer(endpoint).data, "secret": secret}


class WebhookEndpointListView(PaginatedListView):
    serializer_class = WebhookEndpointSerializer

    @extend_schema(
        operation_id="webhook_endpoints_list",
        summary="The tenant's webhook endpoints (tenant admins)",
        responses=error_responses(WebhookEndpointSerializer(many=True), 400, 401, 403),
        tags=["webhooks"],
    )
    def get(self, request):
        return self.list_response(selectors.webhook_endpoints(actor=request.user))

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Add a webhook endpoint; its signing secret is in the answer, and only there",
        request=WebhookEndpointSerializer,
        responses=error_responses(_SECRET_RESPONSE, 400, 401, 403),
        tags=["webhooks"],
    )
    def post(self, request):
        selectors.webhook_endpoints(actor=request.user)  # tenant admins only
        serializer = WebhookEndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        endpoint, secret = services.endpoint_create(
            actor=request.user, url=data["url"], event_types=data.get("event_types", []),
            description=data.get("description", ""),
        )  # fmt: skip
        return data_response(_with_secret(endpoint, secret), message=_("Created."), status_code=201)


class WebhookEndpointDetailView(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_get", summary="One webhook endpoint",
        responses=error_responses(_ENDPOINT_RESPONSE, 401, 403, 404), tags=["webhooks"],
    )  # fmt: skip
    def get(self, request, endpoint_id):
        return data_response(
            WebhookEndpointSerializer(
                selectors.webhook_endpoint_get(actor=request.user, endpoint_id=endpoint_id)
            ).data
        )

    @extend_schema(
        operation_id="webhook_endpoints_update",
        summary="Change an endpoint's URL, types, description, or enable/disable it",
        request=WebhookEndpointSerializer,
        responses=error_responses(_ENDPOINT_RESPONSE, 400, 401, 403, 404),
        tags=["webhooks"],
    )
    def patch(self, request, endpoint_id):
        endpoint = selectors.webhook_endpoint_get(actor=request.user, endpoint_id=endpoint_id)
        serializer = WebhookEndpointSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(
            actor=request.user, endpoint=endpoint, changes=dict(serializer.validated_data)
        )
        return data_response(WebhookEndpointSerializer(endpoint).data, message=_("Saved."))

    @extend_schema(
        operation_id="webhook_endpoints_delete", summary="Delete an endpoint (its deliveries too)",
        responses=error_responses(data_envelope("WebhookDeleted", serializers.DictField()), 401, 403, 404),
        tags=["webhooks"],
    )  # fmt: skip
    def delete(self, request, endpoint_id):
        endpoint = selectors.webhook_endpoint_get(actor=request.user, endpoint_id=endpoint_id)
        services.endpoint_delete(actor=request.user, endpoint=endpoint)
        return data_response({"deleted": True}, message=_("Deleted."))


class WebhookRotateView(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        summary="A new signing secret (in the answer only); the old one signs too for 24 h",
        request=None,
        responses=error_responses(_SECRET_RESPONSE, 401, 403, 404),
        tags=["webhooks"],
    )
    def post(self, request, endpoint_id):
        endpoint = selectors.webhook_endpoint_get(actor=request.user, endpoint_id=endpoint_id)
        secret = services.secret_rotate(actor=request.user, endpoint=endpoint)
        return data_response(_with_secret(endpoint, secret), message=_("Rotated."))


class WebhookRecoverView(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_recover",
        summary="Send again every event since a time that this endpoint has not received",
        request=WebhookRecoverSerializer,
        responses=error_responses(
            data_envelope("WebhookRecovered", serializers.DictField()), 400, 401, 403, 404
        ),
        tags=["webhooks"],
    )
    def post(self, request, endpoint_id):
        endpoint = selectors.webhook_endpoint_get(actor=request.user, endpoint_id=endpoint_id)
        serializer = WebhookRecoverSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = services.endpoint_recover(
            actor=request.user, endpoint=endpoint, since=serializer.validated_data["since"]
        )
        return data_response({"queued": count})


class WebhookDeliveryListView(PaginatedListView):
    serializer_class = WebhookDeliverySerializer

    @extend_schema(
        operation_id="webhook_deliveries_list",
        summary="An endpoint's deliveries, newest first, each with its attempts",
        responses=error_responses(WebhookDeliverySerializer(many=True), 400, 401, 403, 404),
        tags=["webhooks"],
    )
    def get(self, request, endpoint_id):
        endpoint = selectors.webhook_endpoint_get(actor=request.user, endpoint_id=endpoint_id)
        return self.list_response(selectors.webhook_deliveries(endpoint=endpoint))


class WebhookRedeliverView(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_redeliver",
        summary="One more attempt of a delivery's event, now (same webhook-id and body)",
        request=None,
        responses=error_responses(
            data_envelope("WebhookRedelivered", serializers.DictField()), 401, 403, 404
        ),
        tags=["webhooks"],
    )
    def post(self, request, delivery_id):
        delivery = selectors.webhook_delivery_get(actor=request.user, delivery_id=delivery_id)
        copy = services.delivery_redeliver(actor=request.user, delivery=delivery)
        return data_response({"delivery_id": copy.id}, message=_("Queued."), status_code=202)
