"""Reads of communication logs. Every query starts from a tenant-scoped base set.

Who sees what: a user sees their own logs in their tenant; a tenant admin may read
any user of their tenant; a platform admin may read across tenants on the admin list.
"""

from datetime import UTC, timedelta
from urllib.parse import urlencode

import django_filters
from django import forms
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters.fields import IsoDateTimeField

from authms.errors import NotFoundError, PermissionDeniedError, ValidationError
from authms.models import User
from communication.models import Batch, Channel, CommunicationLog, Status, StatusDetail


def _choice_error(name: str, choices) -> dict:
    """Django forms fill in %(value)s; the name and allowed values are fixed here, translated lazily."""
    allowed = ", ".join(value for value, _label in choices)
    return {
        "invalid_choice": format_lazy(
            gettext_lazy("Unknown {name} %(value)s; allowed values: {allowed}."), name=name, allowed=allowed
        )
    }


class UtcDateTimeField(IsoDateTimeField):
    """RFC 3339 in, UTC out. Converting here keeps offsets PostgreSQL refuses (beyond ±15:59)
    and instants outside years 1–9999 (SQLite overflows) from ever reaching a query; an
    empty value is refused rather than silently ignored."""

    default_error_messages = {
        "empty": gettext_lazy(
            "Give an RFC 3339 time such as 2026-04-15T10:00:00Z, or leave the parameter out."
        ),
        "out_of_range": gettext_lazy("The time is outside the years 1 to 9999 once converted to UTC."),
    }

    def to_python(self, value):
        if isinstance(value, str) and not value.strip():
            raise forms.ValidationError(self.error_messages["empty"], code="empty")
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["out_of_range"], code="out_of_range") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class LogFilter(django_filters.FilterSet):
    channel = django_filters.ChoiceFilter(
        choices=Channel.choices, error_messages=_choice_error("channel", Channel.choices)
    )
    status = django_filters.ChoiceFilter(
        choices=Status.choices, error_messages=_choice_error("status", Status.choices)
    )
    status_detail = django_filters.ChoiceFilter(
        choices=StatusDetail.choices, error_messages=_choice_error("status_detail", StatusDetail.choices)
    )
    batch_id = django_filters.CharFilter()
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = CommunicationLog
        fields = ["channel", "status", "status_detail", "batch_id", "created_after", "created_before"]


class AdminLogFilter(LogFilter):
    user_id = django_filters.CharFilter()
    tenant_id = django_filters.CharFilter()
    provider = django_filters.CharFilter()
    recipient = django_filters.CharFilter()

    class Meta(LogFilter.Meta):
        fields = LogFilter.Meta.fields + ["user_id", "tenant_id", "provider", "recipient"]


def _filtered(filter_class, queryset: QuerySet, filters) -> QuerySet:
    filterset = filter_class(filters, queryset)
    if not filterset.is_valid():
        errors = {
            field: [str(message) for message in messages] for field, messages in filterset.errors.items()
        }
        raise ValidationError(" ".join(messages[0] for messages in errors.values()), errors=errors)
    return filterset.qs


def _base(*, tenant_id: str | None = None) -> QuerySet:
    queryset = CommunicationLog.objects.all()
    return queryset.filter(tenant_id=tenant_id) if tenant_id is not None else queryset


def log_list_for_user(*, actor: User, user_id: str | None = None, filters=None) -> QuerySet:
    """The caller's own logs, or — for a tenant admin — one user's logs of the caller's tenant."""
    target = user_id or actor.id
    if target != actor.id and not actor.is_tenant_admin:
        raise PermissionDeniedError(_("You may only read your own communication logs."))
    queryset = _base(tenant_id=actor.tenant_id).filter(user_id=target)
    return _filtered(LogFilter, queryset, filters or {})


def log_list_for_admin(*, actor: User, filters=None) -> QuerySet:
    """All logs of the admin's tenant; every tenant for a platform admin."""
    if not actor.is_tenant_admin:
        raise PermissionDeniedError(_("Only tenant or platform administrators may read all logs."))
    queryset = _base(tenant_id=None if actor.is_platform_admin else actor.tenant_id)
    return _filtered(AdminLogFilter, queryset, filters or {})


def batch_progress(*, actor: User, batch_id: str) -> dict:
    """Counts per status of a batch the caller sent, owns, or administers; else 404."""
    batch = Batch.objects.filter(id=batch_id).first()
    visible = batch is not None and (
        actor.is_platform_admin
        or (
            batch.tenant_id == actor.tenant_id
            and (actor.is_tenant_admin or actor.id in (batch.sender_id, batch.user_id))
        )
    )
    if not visible:
        raise NotFoundError(_("No batch %(id)r.") % {"id": batch_id})
    counts = batch_status_counts(batch_id=batch.id)
    return {
        "batch_id": batch.id,
        "channel": batch.channel,
        "user_id": batch.user_id,
        "sender_id": batch.sender_id,
        "total": batch.total,
        "counts": counts,
        "completed": batch.completed_at is not None,
        "created_at": batch.created_at,
        "completed_at": batch.completed_at,
    }


def batch_status_counts(*, batch_id: str) -> dict[str, int]:
    """Logs of a batch per status, every status present (0 when none)."""
    counts = dict.fromkeys(Status.values, 0)
    rows = (
        CommunicationLog.objects.filter(batch_id=batch_id).values("status").annotate(n=Count("id")).order_by()
    )
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def awaiting_report_count(*, provider: str, sent_from, sent_before) -> int:
    """Messages `provider` accepted in [sent_from, sent_before) with no delivery report yet.

    Platform-wide on purpose (a provider's health spans tenants); it never leaves the health
    check. Read from the partial index `log_awaiting_report`."""
    return CommunicationLog.objects.filter(
        provider=provider, status=Status.SENT, sent_at__gte=sent_from, sent_at__lt=sent_before
    ).count()


DASHBOARD_WINDOWS = (("24h", 24), ("7d", 24 * 7))
DASHBOARD_CACHE_SECONDS = 60


def delivery_dashboard(*, actor: User) -> dict:
    """Per channel and provider: sent, delivered, failed, pending and rates, for the last
    24 hours and 7 days, plus the top failure reasons; cached a minute per tenant."""
    scope = "all" if actor.is_platform_admin else actor.tenant_id
    key = f"dashboard:{scope}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    now = timezone.now()
    base = _base(tenant_id=None if actor.is_platform_admin else actor.tenant_id)
    starts = {label: now - timedelta(hours=hours) for label, hours in DASHBOARD_WINDOWS}
    # One scan of the longest window counts every window at once (the shorter ones are inside it).
    rows = (
        base.filter(created_at__gte=min(starts.values()))
        .values("channel", "provider", "status")
        .annotate(**{label: Count("id", filter=Q(created_at__gte=start)) for label, start in starts.items()})
        .order_by()
    )
    per_window: dict[str, dict[tuple[str, str], dict]] = {label: {} for label in starts}
    for row in rows:
        for label in starts:
            if row[label]:
                group = per_window[label].setdefault(
                    (row["channel"], row["provider"]), dict.fromkeys(Status.values, 0)
                )
                group[row["status"]] = row[label]
    windows = []
    for label, start in starts.items():
        lines = []
        for (channel, provider), counts in sorted(per_window[label].items()):
            total = sum(counts.values())
            finished = total - counts[Status.PENDING]
            accepted = counts[Status.SENT] + counts[Status.DELIVERED]
            lines.append(
                {
                    "channel": channel,
                    "provider": provider,
                    # The logs list showing these figures (the template adds the status).
                    "list_query": urlencode(
                        {
                            "channel__exact": channel,
                            "provider": provider,
                            "created_at__gte": start.isoformat(),
                        }
                    ),
                    "total": total,
                    **counts,
                    "accepted_rate": round(100 * accepted / finished, 1) if finished else None,
                    "delivery_rate": round(100 * counts[Status.DELIVERED] / finished, 1)
                    if finished
                    else None,
                    "bars": _bar_widths(counts, total),
                }
            )
        reasons = list(
            base.filter(created_at__gte=start, status=Status.FAILED)
            .values("error")
            .annotate(n=Count("id"))
            .order_by("-n", "error")[:5]
        )
        windows.append({"label": label, "lines": lines, "top_failures": reasons})
    dashboard = {"windows": windows, "generated_at": now}
    cache.set(key, dashboard, DASHBOARD_CACHE_SECONDS)
    return dashboard


def _bar_widths(counts: dict[str, int], total: int) -> list[dict]:
    """Segments of a 100-unit stacked bar, in a fixed order."""
    segments, offset = [], 0.0
    for status in (Status.DELIVERED, Status.SENT, Status.PENDING, Status.FAILED):
        width = 100 * counts[status] / total if total else 0
        segments.append(
            {"status": status, "x": round(offset, 2), "width": round(width, 2), "count": counts[status]}
        )
        offset += width
    return segments
