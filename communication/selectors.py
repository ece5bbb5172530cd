"""Reads of communication logs. Every query starts from a tenant-scoped base set.

Who sees what: a user sees their own logs in their tenant; a tenant admin may read
any user of their tenant; a platform admin may read across tenants on the admin list.
"""

import django_filters
from django.db.models import Count, QuerySet

from authms.errors import NotFoundError, PermissionDeniedError, ValidationError
from authms.models import User
from communication.models import Batch, Channel, CommunicationLog, Status


def _choice_error(name: str, choices) -> dict:
    allowed = ", ".join(value for value, _ in choices)
    return {"invalid_choice": f"Unknown {name} %(value)s; allowed values: {allowed}."}


class LogFilter(django_filters.FilterSet):
    channel = django_filters.ChoiceFilter(
        choices=Channel.choices, error_messages=_choice_error("channel", Channel.choices)
    )
    status = django_filters.ChoiceFilter(
        choices=Status.choices, error_messages=_choice_error("status", Status.choices)
    )
    batch_id = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = CommunicationLog
        fields = ["channel", "status", "batch_id", "created_after", "created_before"]


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
        raise PermissionDeniedError("You may only read your own communication logs.")
    queryset = _base(tenant_id=actor.tenant_id).filter(user_id=target)
    return _filtered(LogFilter, queryset, filters or {})


def log_list_for_admin(*, actor: User, filters=None) -> QuerySet:
    """All logs of the admin's tenant; every tenant for a platform admin."""
    if not actor.is_tenant_admin:
        raise PermissionDeniedError("Only tenant or platform administrators may read all logs.")
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
        raise NotFoundError(f"No batch {batch_id!r}.")
    counts = dict.fromkeys(Status.values, 0)
    rows = (
        CommunicationLog.objects.filter(batch_id=batch.id).values("status").annotate(n=Count("id")).order_by()
    )
    counts.update({row["status"]: row["n"] for row in rows})
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
