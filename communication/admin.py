import csv
import json
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from authms.admin_paginator import EstimatedCountPaginator
from authms.admin_scoping import PlatformAdminOnly, ReadOnlyAdminMixin, TenantScopedAdmin
from authms.audit import staff_action_record
from authms.errors import ApplicationError
from communication.masking import mask_recipient, redact_recipient
from communication.models import (
    Batch,
    CommunicationLog,
    DeliveryAttempt,
    Device,
    EmailEvent,
    Preference,
    Price,
    ProviderHealth,
    ProviderSwitch,
    Status,
    Suppression,
    SuppressionLift,
    SyncRun,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from communication.recipients import normalise, suppression_key
from communication.selectors import counted_log_providers, counted_log_total
from communication.services import batches_cancel, devices_deactivate, logs_retry
from communication.services.suppression import suppressions_lift
from communication.services.webhooks import (
    delivery_redeliver,
    endpoint_create,
    endpoint_update,
    event_types_clean,
    secret_rotate,
    url_clean,
)
from communication.status_sync import status_sync_all, status_sync_enabled

CSV_COLUMNS = [
    "id", "created_at", "tenant_id", "user_id", "channel", "provider", "recipient", "status",
    "error", "batch_id", "provider_message_id", "sent_at", "delivered_at",
]  # fmt: skip


class _Echo:
    def write(self, value):
        return value


def csv_export_response(queryset) -> StreamingHttpResponse:
    """Streamed row by row from a server-side cursor: 100k rows never sit in memory.
    Recipients are masked, as everywhere outside a single log's detail page."""
    writer = csv.writer(_Echo())
    rows = queryset.order_by().values_list(*CSV_COLUMNS).iterator(chunk_size=2000)
    channel_at, recipient_at = CSV_COLUMNS.index("channel"), CSV_COLUMNS.index("recipient")
    error_at = CSV_COLUMNS.index("error")

    def lines():
        yield writer.writerow(CSV_COLUMNS)
        for row in rows:
            row = list(row)
            row[error_at] = redact_recipient(row[error_at], row[channel_at], row[recipient_at])
            row[recipient_at] = mask_recipient(row[channel_at], row[recipient_at])
            yield writer.writerow(["" if value is None else value for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="communication-logs-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    )
    return response


def _without_export(request):
    request.GET = request.GET.copy()
    request.GET.pop("export", None)
    return request


def _detail_url(log_id: str) -> str:
    return reverse("admin:communication_communicationlog_change", args=[quote(log_id)])


# List parameters the maintained log counts answer exactly, and the count field of each.
COUNTED_LIST_FILTERS = {
    "channel__exact": "channel",
    "status__exact": "status",
    "status_detail__exact": "status_detail",
    "provider": "provider",
    "tenant__id__exact": "tenant_id",
}
LIST_CONTROLS = {"p", "o"}  # page and ordering: they do not change what is counted


def counted_filters(request, *, only_counted: bool = False) -> dict[str, str] | None:
    """The logs list's filters as count fields. None when some filter (a search, a date) is
    one the counts cannot answer, or with `only_counted`, those left out."""
    dimensions = {}
    for name, values in request.GET.lists():
        tenant_filter_refused = name == "tenant__id__exact" and not request.user.is_superuser
        counted = name in COUNTED_LIST_FILTERS and len(values) == 1 and not tenant_filter_refused
        if counted:
            dimensions[COUNTED_LIST_FILTERS[name]] = values[0]
        elif name not in LIST_CONTROLS and not only_counted:
            return None
    # Tenant staff count their own tenant only; the platform admin every tenant or the one filtered.
    dimensions["tenant_id"] = (
        dimensions.get("tenant_id") if request.user.is_superuser else request.user.tenant_id
    )
    return dimensions


class ProviderFilter(admin.SimpleListFilter):
    """Provider choices from the maintained log counts (cached), never a DISTINCT over the logs."""

    title = _("provider")
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        # The providers of the logs this staff member may see: per tenant, never every tenant's.
        tenant_id = None if request.user.is_superuser else request.user.tenant_id
        key = f"communication:provider-names:{tenant_id or 'all'}"
        names = cache.get(key)
        if names is None:
            names = counted_log_providers(tenant_id=tenant_id)
            cache.set(key, names, 300)
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset.filter(provider=self.value()) if self.value() else queryset


STATUS_COLOURS = {
    Status.PENDING: ("#8a6d00", "#fff4c2"),
    Status.SENT: ("#1d4f91", "#dce9fb"),
    Status.DELIVERED: ("#216e39", "#d8f3dc"),
    Status.FAILED: ("#9b1c1c", "#fde2e1"),
}


def status_badge(status: str):
    colour, background = STATUS_COLOURS.get(status, ("#333", "#eee"))
    return format_html(
        '<span class="status-badge" style="color:{};background:{};padding:2px 8px;border-radius:10px;'
        'font-weight:600;white-space:nowrap">{}</span>',
        colour,
        background,
        Status(status).label if status in Status.values else status,
    )


class DeliveryAttemptInline(admin.TabularInline):
    """The message's path: provider attempts that did not settle it (read-only)."""

    model = DeliveryAttempt
    fields = readonly_fields = ["at", "provider", "error", "next_provider"]
    extra = 0
    can_delete = False
    verbose_name_plural = _("provider attempts that did not settle it")

    def has_view_permission(self, request, obj=None):
        return True  # whoever may see the log (tenant-scoped by its admin) sees its path

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EmailEventInline(DeliveryAttemptInline):
    """What the ESP's tracking webhooks said about this email (read-only)."""

    model = EmailEvent
    fields = readonly_fields = ["at", "kind", "detail", "esp"]
    verbose_name_plural = _("ESP events (deliveries, bounces, complaints, opens, clicks)")


@admin.register(CommunicationLog)
class CommunicationLogAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    inlines = [DeliveryAttemptInline, EmailEventInline]
    # What support looks for first; the long id last.
    list_display = [
        "created",
        "masked_recipient",
        "user",
        "channel",
        "status_badge",
        "provider",
        "short_error",
        "id",
    ]
    list_display_links = ["created"]
    list_filter = ["channel", "status", "status_detail", ProviderFilter, "created_at"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    search_fields = ["id"]
    search_help_text = _(
        "A log, batch or provider message id; a phone number as written (13800138000, +86 138 0013 8000); "
        "an email address or its beginning (ann@exam)."
    )
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a COUNT per filter choice over millions of logs
    paginator = EstimatedCountPaginator
    list_per_page = 50
    actions = ["retry_failed", "export_csv"]
    # The detail page, grouped as support reads it.
    fieldsets = [
        (None, {"fields": ["timeline", "id", "tenant", "user", "batch_link", "retry_of_link", "retried_as"]}),
        (_("Message"), {"fields": ["channel", "masked_recipient", "template", "subject", "content"]}),
        (
            _("Delivery"),
            {
                "fields": [
                    "status",
                    "status_detail",
                    "masked_error",
                    "provider",
                    "provider_message_id",
                    "fee",
                    "engagement",
                    "attempts",
                    "sent_at",
                    "delivered_at",
                ]
            },
        ),  # fmt: skip
        (_("Provider answer (recipients masked)"), {"fields": ["pretty_response"]}),
        (
            _("Internals"),
            {
                "classes": ["collapse"],
                "fields": ["next_attempt_at", "provider_ref", "claimed_at", "created_at", "updated_at"],
            },
        ),  # fmt: skip
    ]
    readonly_fields = [*(field for _name, options in fieldsets for field in options["fields"]), "recipient"]

    def get_fieldsets(self, request, obj=None):
        """The full recipient instead of the masked one for staff allowed to see it."""
        fieldsets = super().get_fieldsets(request, obj)
        if not request.user.has_perm("communication.view_full_recipient"):
            return fieldsets
        return [
            (
                name,
                {
                    **options,
                    "fields": ["recipient" if f == "masked_recipient" else f for f in options["fields"]],
                },
            )
            for name, options in fieldsets
        ]

    def get_urls(self):
        custom = [
            path(
                "sync-status/",
                self.admin_site.admin_view(self.sync_status_view),
                name="communication_communicationlog_sync_status",
            ),
            path(
                "<path:object_id>/retry/",
                self.admin_site.admin_view(self.retry_one_view),
                name="communication_communicationlog_retry",
            ),
        ]
        return custom + super().get_urls()

    def sync_status_view(self, request):
        """One status-sync call now per pollable provider; each provider's rate limit still holds."""
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:communication_communicationlog_changelist")
        if not status_sync_enabled():
            self.message_user(request, _("No provider in use reports delivery by polling."), messages.WARNING)
            return HttpResponseRedirect(changelist)
        runs = status_sync_all()
        staff_action_record(
            actor=request.user,
            action="Synced delivery status now: "
            + (", ".join(run.provider for run in runs) or "nothing due"),
        )
        if not runs:
            self.message_user(
                request,
                _(
                    "A status sync ran within the provider's polling interval (SUBMAIL: one call a minute). Try again shortly."
                ),
                messages.WARNING,
            )
        for run in runs:
            if run.error:
                self.message_user(
                    request,
                    _("Status sync of %(provider)s failed: %(error)s")
                    % {"provider": run.provider, "error": run.error},
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    _(
                        "Status sync of %(provider)s: %(received)d reports read, %(applied)d logs updated, %(unknown)d unknown ids."
                    )
                    % {
                        "provider": run.provider,
                        "received": run.received,
                        "applied": run.applied,
                        "unknown": run.unknown,
                    },
                    messages.SUCCESS,
                )
        return HttpResponseRedirect(changelist)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """The count from the maintained log counts when the list's filters are ones they
        answer (channel, status, status detail, provider, tenant); otherwise the estimating
        paginator's."""
        dimensions = counted_filters(request)
        known_count = None if dimensions is None else partial(counted_log_total, **dimensions)
        return self.paginator(queryset, per_page, orphans, allow_empty_first_page, known_count=known_count)

    def get_search_results(self, request, queryset, search_term):
        """What staff type: a log, batch or provider message id; a number as customers write it
        (`13800138000`, `138 0013 8000`, `+86 138…`, found as the stored E.164); a whole email
        address, or the start of one (`ann@`, `ann@exam`)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        found = Q(id=term) | Q(batch_id=term) | Q(provider_message_id=term) | Q(recipient=term)
        if "@" in term:
            address = normalise("email", term)
            # A whole address is an index lookup; only the beginning of one scans (within the
            # list's filters, newest first, until a page is full).
            if address.is_valid:
                found |= Q(recipient=address.value) | Q(recipient=address.value.lower())
            else:
                found |= Q(recipient__startswith=term.lower())
        else:
            number = normalise("sms", term)
            if number.is_valid:
                found |= Q(recipient=number.value)
        return queryset.filter(found), False

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.user.is_superuser:  # platform admins see every tenant's logs side by side
            columns.insert(3, "tenant")
        return columns

    def get_list_select_related(self, request):
        return [*self.list_select_related, *(["tenant"] if request.user.is_superuser else [])]

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, log):
        """With seconds and the zone: support compares these with what customers report."""
        return date_format(localtime(log.created_at), "DATETIME_FORMAT")

    @admin.display(description=_("error"))
    def short_error(self, log):
        error = redact_recipient(log.error, log.channel, log.recipient) or ""
        return error if len(error) <= 80 else f"{error[:79]}…"

    @admin.display(description=_("recipient"))
    def masked_recipient(self, log):
        return mask_recipient(log.channel, log.recipient)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, log):
        return status_badge(log.status)

    @admin.display(description=_("timeline"))
    def timeline(self, log):
        """created → sent → delivered/failed, with times, at the top of the detail page."""
        steps = [(_("created"), log.created_at, None)]
        if log.claimed_at:
            steps.append((_("picked up by a worker"), log.claimed_at, None))
        if log.sent_at:
            steps.append((_("sent"), log.sent_at, Status.SENT))
        if log.delivered_at:
            steps.append((_("delivered"), log.delivered_at, Status.DELIVERED))
        if log.status == Status.FAILED:
            steps.append((_("failed"), log.updated_at, Status.FAILED))
        if log.status == Status.PENDING:
            steps.append((_("waiting to be sent"), None, Status.PENDING))
        return format_html_join(
            " → ",
            "<span>{} <small>{}</small></span>",
            (
                (
                    status_badge(status) if status else label,
                    date_format(localtime(at), "DATETIME_FORMAT") if at else "",
                )
                for label, at, status in steps
            ),
        )

    @admin.action(description=_("Retry selected failed logs"))
    def retry_failed(self, request, queryset):
        result = logs_retry(actor=request.user, log_ids=list(queryset.values_list("id", flat=True)))
        if result.retried:
            batches = ", ".join(batch.id for batch in result.batches)
            originals = CommunicationLog.objects.filter(id__in=result.originals).only("id")
            staff_action_record(actor=request.user, action=f"Retried as {batches}", objects=originals)
            self.message_user(
                request,
                ngettext(
                    "%(count)d log queued again as %(batches)s.",
                    "%(count)d logs queued again as %(batches)s.",
                    result.retried,
                )
                % {"count": result.retried, "batches": batches},
                messages.SUCCESS,
            )
        for reason, count in result.skipped.items():
            self.message_user(
                request,
                ngettext("%(count)d skipped: %(reason)s.", "%(count)d skipped: %(reason)s.", count)
                % {"count": count, "reason": reason},
                messages.WARNING,
            )

    @admin.action(description=_("Export selected logs as CSV"))
    def export_csv(self, request, queryset):
        return csv_export_response(queryset)

    def changelist_view(self, request, extra_context=None):
        if request.GET.get("export") == "csv":
            # The whole filtered changelist, not only the selected page.
            try:
                changelist = self.get_changelist_instance(_without_export(request))
            except IncorrectLookupParameters:  # a filter the list does not have: as the list does
                return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
            return csv_export_response(changelist.get_queryset(request))
        extra_context = {
            **(extra_context or {}),
            "status_sync_enabled": status_sync_enabled(),
            # The list needs the width more than the navigation (breadcrumbs remain): with the
            # sidebar its columns scrolled off at 1280 px.
            "is_nav_sidebar_enabled": False,
        }
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("batch"))
    def batch_link(self, log):
        if not log.batch_id:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:communication_batch_change", args=[log.batch_id]),
            log.batch_id,
        )

    @admin.display(description=_("retry of"))
    def retry_of_link(self, log):
        if not log.retry_of:
            return "—"
        return format_html('<a href="{}">{}</a>', _detail_url(log.retry_of), log.retry_of)

    @admin.display(description=_("retried as"))
    def retried_as(self, log):
        copies = list(
            CommunicationLog.objects.filter(tenant_id=log.tenant_id, retry_of=log.id).values_list(
                "id", flat=True
            )[:20]
        )
        if not copies:
            return "—"
        return format_html_join(", ", '<a href="{}">{}</a>', ((_detail_url(copy), copy) for copy in copies))

    def retry_one_view(self, request, object_id):
        """The detail page's Retry button: the same retry as the list action, for this log."""
        log = self.get_object(request, unquote(object_id))
        if request.method != "POST" or log is None or not self.has_view_permission(request, log):
            raise PermissionDenied
        self.retry_failed(request, self.get_queryset(request).filter(pk=log.pk))
        copy = CommunicationLog.objects.filter(retry_of=log.pk).order_by("-created_at").first()
        return HttpResponseRedirect(_detail_url(copy.id if copy else log.pk))

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["retryable"] = obj is not None and obj.status == Status.FAILED  # the Retry button
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def get_inlines(self, request, obj):
        email = obj is not None and obj.channel == "email"
        return [inline for inline in self.inlines if email or inline is not EmailEventInline]

    @admin.display(description=_("opens and clicks"))
    def engagement(self, log):
        if log.channel != "email":
            return "—"
        counts = dict(
            log.email_events.filter(kind__in=[EmailEvent.Kind.OPENED, EmailEvent.Kind.CLICKED])
            .values_list("kind")
            .annotate(n=Count("id"))
            .order_by()
        )
        return _("Opened %(opens)d, clicked %(clicks)d") % {
            "opens": counts.get(EmailEvent.Kind.OPENED, 0),
            "clicks": counts.get(EmailEvent.Kind.CLICKED, 0),
        }

    @admin.display(description=_("error"))
    def masked_error(self, log):
        return redact_recipient(log.error, log.channel, log.recipient) or "—"

    @admin.display(description=_("provider response"))
    def pretty_response(self, log):
        if not log.response:
            return "—"
        try:
            text = json.dumps(json.loads(log.response), indent=2, ensure_ascii=False)
        except ValueError:
            text = log.response
        text = redact_recipient(text, log.channel, log.recipient)
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", text)


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["tenant", "channel", "recipient", "category", "reason"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("channel") and cleaned.get("recipient"):
            normalised = normalise(cleaned["channel"], cleaned["recipient"])
            if normalised.is_valid:
                cleaned["recipient"] = suppression_key(cleaned["channel"], normalised.value)
            else:
                self.add_error("recipient", normalised.error)
        return cleaned


class LiftForm(forms.Form):
    note = forms.CharField(
        label=_("Why is it lifted?"), widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=1000
    )


@admin.register(Suppression)
class SuppressionAdmin(TenantScopedAdmin):
    """Staff add recipients or lift them with a reason (kept in *Lifted suppressions*); the
    bulk sender skips suppressed recipients (their logs fail saying why)."""

    list_display = ["recipient", "channel", "category", "reason", "created_at", "detail"]
    list_filter = ["channel", "category", "reason"]
    search_fields = ["=recipient"]
    fields = ["tenant", "channel", "recipient", "category", "reason", "detail"]
    readonly_fields = ["detail"]
    form = SuppressionForm
    actions = ["lift"]

    def has_delete_permission(self, request, obj=None):
        return False  # lifted with a reason instead (the action below), never silently deleted

    def has_lift_permission(self, request):
        return request.user.has_perm("communication.delete_suppression")

    @admin.action(description=_("Lift the selected suppressions (with a reason)"), permissions=["lift"])
    def lift(self, request, queryset):
        form = LiftForm(request.POST if "note" in request.POST else None)
        if form.is_valid():
            lifted = suppressions_lift(
                actor=request.user, suppressions=queryset, note=form.cleaned_data["note"]
            )
            self.message_user(
                request, _("%(count)d suppression(s) lifted.") % {"count": lifted}, messages.SUCCESS
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Lift suppressions"),
            "form": form,
            "entries": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/communication/suppression/lift.html", context)


@admin.register(SuppressionLift)
class SuppressionLiftAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Audit: every suppression staff lifted, by whom and why."""

    list_display = ["at", "recipient", "channel", "was", "suppressed_at", "lifted_by", "note"]
    list_filter = ["channel", "was"]
    search_fields = ["=recipient"]
    list_select_related = ["lifted_by"]


@admin.register(Device)
class DeviceAdmin(TenantScopedAdmin):
    """Users' push targets. Tokens and endpoints are secrets: shown masked, never editable;
    staff may deactivate or delete a device (a lost phone), not change it."""

    list_display = ["user", "platform", "provider", "masked_token", "name", "app_id", "active", "failure_count",
                    "last_seen_at", "last_error"]  # fmt: skip
    list_filter = ["platform", "provider", "active"]
    search_fields = ["=user__username", "=user__id", "=device_id", "=id"]
    list_select_related = ["user"]
    fields = readonly_fields = [
        "id", "tenant", "user", "platform", "provider", "masked_token", "app_id", "device_id", "name", "locale",
        "time_zone", "app_version", "active", "failure_count", "last_error", "created_at", "last_seen_at",
        "deactivated_at",
    ]  # fmt: skip
    actions = ["deactivate"]
    show_full_result_count = False

    def has_add_permission(self, request, obj=None):
        return False  # apps register devices through the API

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("token or endpoint"))
    def masked_token(self, device):
        return device.masked_token

    @admin.action(description=_("Deactivate selected devices (stop sending to them)"), permissions=["delete"])
    def deactivate(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        count = devices_deactivate(device_ids=ids, reason=_("Deactivated by staff."))
        staff_action_record(
            actor=request.user,
            action=f"Deactivated {count} push devices",
            objects=queryset.filter(id__in=ids),
        )
        self.message_user(
            request,
            ngettext("%(count)d device deactivated.", "%(count)d devices deactivated.", count)
            % {"count": count},
        )


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["id", "created_at", "sender", "user", "channel", "total", "send_at", "cancellation_key",
                    "completed_at"]  # fmt: skip
    list_filter = ["channel"]
    list_select_related = ["sender", "user"]
    search_fields = ["=id", "=cancellation_key"]
    show_full_result_count = False
    readonly_fields = ["id", "tenant", "sender", "user", "channel", "total", "created_at", "send_at",
                       "cancellation_key", "completed_at"]  # fmt: skip
    actions = ["cancel"]

    @admin.action(description=_("Cancel what the selected batches have not sent yet"))
    def cancel(self, request, queryset):
        batches = list(queryset)
        result = batches_cancel(actor=request.user, batches=batches)
        staff_action_record(
            actor=request.user,
            action=f"Cancelled {result.cancelled} logs ({result.already_left} had already left)",
            objects=batches,
        )
        self.message_user(
            request,
            _("%(cancelled)d cancelled; %(left)d had already left.")
            % {"cancelled": result.cancelled, "left": result.already_left},
        )


class PlatformRecordAdmin(admin.ModelAdmin):
    """Read-only records of provider accounts, which span tenants: platform admins only."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(PlatformRecordAdmin):
    """Recent delivery-status sync calls."""

    list_display = ["started_at", "provider", "account", "offset", "received", "applied", "unknown", "error"]
    list_filter = ["provider"]
    show_full_result_count = False


@admin.register(ProviderHealth)
class ProviderHealthAdmin(PlatformRecordAdmin):
    """Which providers are in rotation now, and why."""

    list_display = ["provider", "state", "changed_at", "reason"]


@admin.register(ProviderSwitch)
class ProviderSwitchAdmin(PlatformRecordAdmin):
    """Every time a provider left or rejoined the rotation (each also told platform staff)."""

    list_display = ["at", "provider", "state", "reason"]
    list_filter = ["provider", "state"]


@admin.register(Preference)
class PreferenceAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Users' own choices per category and channel (they set them over the API, or an email's
    unsubscribe link did). Staff read them here to answer "why did I not get it?"."""

    list_display = ["user", "category", "channel", "enabled", "updated_at"]
    list_filter = ["category", "channel", "enabled"]
    list_select_related = ["user"]
    search_fields = ["=user__username", "=user__id"]


@admin.register(Price)
class PriceAdmin(PlatformAdminOnly, admin.ModelAdmin):
    """The price table behind the spend caps' estimate: platform admins edit it."""

    list_display = ["provider", "channel", "country", "unit_price", "updated_at"]
    list_filter = ["provider", "channel"]
    search_fields = ["=country"]
    list_editable = ["unit_price"]


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["tenant", "url", "description", "event_types", "enabled"]

    def clean_url(self):
        try:
            return url_clean(self.cleaned_data["url"])
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None

    def clean_event_types(self):
        try:
            return event_types_clean(self.cleaned_data["event_types"] or [])
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    """The tenant's webhook URLs. The signing secret is shown once, when the endpoint is added
    (or its secret rotated with the action); it is stored encrypted and never shown again."""

    form = WebhookEndpointForm
    list_display = ["url", "enabled", "event_types", "failing_since", "disabled_reason", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "=id"]
    actions = ["rotate_secret"]

    def save_model(self, request, obj, form, change):
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name != "tenant"}
            endpoint_update(actor=request.user, endpoint=obj, changes=changes)
            return
        actor = request.user
        tenant_id = obj.tenant_id or actor.tenant_id
        endpoint, secret = endpoint_create(
            actor=actor,
            url=obj.url,
            event_types=obj.event_types,
            description=obj.description,
            tenant_id=tenant_id,
        )
        obj.pk, obj.tenant_id = endpoint.pk, endpoint.tenant_id
        obj._state.adding = False
        self.message_user(request, _("Signing secret (shown only now; store it): %(secret)s") % {"secret": secret},
                          messages.WARNING)  # fmt: skip

    @admin.action(
        description=_("Rotate the signing secret (the old one signs too for 24 h)"), permissions=["change"]
    )
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            secret = secret_rotate(actor=request.user, endpoint=endpoint)
            self.message_user(
                request,
                _("New secret of %(url)s (shown only now): %(secret)s")
                % {"url": endpoint.url, "secret": secret},
                messages.WARNING,
            )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = readonly_fields = ["at", "status_code", "error", "latency_ms", "manual", "response"]
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return True  # part of the delivery's page, which its own permission and tenant scope guard

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Every event sent to an endpoint, with each attempt (status, latency, the answer's first
    2 KB). Staff redeliver one with the action (same webhook-id and body)."""

    tenant_field = "endpoint__tenant_id"
    list_display = ["id", "event_type", "endpoint", "state", "attempts", "next_attempt_at", "delivered_at"]
    list_filter = ["state", "manual"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["=event__id", "=endpoint__id"]
    fields = readonly_fields = [
        "event",
        "endpoint",
        "state",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "manual",
    ]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]
    show_full_result_count = False

    def get_list_filter(self, request):
        return self.list_filter  # tenant filter through the endpoint is not a field here

    @admin.display(description=_("event type"))
    def event_type(self, delivery):
        return delivery.event.type

    def has_redeliver_permission(self, request):
        return request.user.has_perm("communication.change_webhookendpoint")

    @admin.action(description=_("Redeliver the selected events now"), permissions=["redeliver"])
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related("event", "endpoint"):
            delivery_redeliver(actor=request.user, delivery=delivery)
        self.message_user(request, _("Queued."))
