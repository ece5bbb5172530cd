"""Reads of communication logs. Every query starts from a tenant-scoped base set.

Who sees what: a user sees their own logs in their tenant; a tenant admin may read
any user of their tenant; a platform admin may read across tenants on the admin list.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from operator import itemgetter
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters.fields import IsoDateTimeField

from authms.api import pagination
from authms.api.cursor import older_than
from authms.compiled_queries import CompiledQuery, Statement, run, run_together
from authms.errors import NotFoundError, PermissionDeniedError
from authms.local_time import QUIET_HOURS_OFF
from authms.models import Tenant, User
from authms.query_filters import QueryFilter, QueryFilters
from communication.models import (
    CRITICAL_CATEGORIES,
    Batch,
    Category,
    Channel,
    CommunicationLog,
    Device,
    LogCount,
    LogCountDelta,
    Preference,
    Status,
    StatusDetail,
    WebhookDelivery,
    WebhookEndpoint,
)
from communication.preferences import tenant_default


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


def _choice(name: str, choices) -> QueryFilter:
    return QueryFilter(
        name, forms.ChoiceField(choices=choices, required=False, error_messages=_choice_error(name, choices))
    )


def _text(lookup: str) -> QueryFilter:
    """Exact text, compared as given (unstripped)."""
    return QueryFilter(lookup, forms.CharField(required=False, strip=False))


LOG_FILTERS = QueryFilters(
    channel=_choice("channel", Channel.choices),
    status=_choice("status", Status.choices),
    status_detail=_choice("status_detail", StatusDetail.choices),
    batch_id=_text("batch_id"),
    created_after=QueryFilter("created_at__gte", UtcDateTimeField(required=False)),
    created_before=QueryFilter("created_at__lt", UtcDateTimeField(required=False)),
)
ADMIN_LOG_FILTERS = LOG_FILTERS.extended(
    user_id=_text("user_id"),
    # Beside a tenant admin's own tenant, not instead of it: another tenant's id finds nothing.
    tenant_id=_text("tenant_id__exact"),
    provider=_text("provider"),
    recipient=_text("recipient"),
)


_LOG_LIST = CompiledQuery(
    lambda **lookups: CommunicationLog.objects.filter(**lookups).order_by("-created_at", "-id")
)


# A cursor page: the same list after a (created_at, id) position, compiled and prepared alike.
_LOG_CURSOR_PAGE = CompiledQuery(
    lambda after_created_at, after_id, **lookups: _LOG_LIST.build(**lookups).filter(
        older_than(after_created_at, after_id)
    )
)


class LogList:
    """A log list: the logs matching plain lookups (its tenant scope, its user, its filters),
    newest first. Its pages (numbered, deep or after a cursor) and its capped count run as SQL
    compiled once per set of lookup names (authms.compiled_queries), which spares every list
    request the ORM's compilations; `queryset` is the same list as the ORM builds it."""

    def __init__(self, *, scope: dict, filters: dict):
        if set(scope) & set(filters):
            raise ValueError(f"A filter would replace the list's scope: {sorted(set(scope) & set(filters))}")
        self.lookups = {**scope, **filters}

    @cached_property
    def queryset(self) -> QuerySet:
        return _LOG_LIST.build(**self.lookups)

    def rows(self, offset: int, size: int, *, within_hour: bool = False) -> list:
        """From DEFERRED_OFFSET on, ids first, as pagination.rows_at reads. `within_hour`: a page
        inside one hour of creation of a deep admin list (log_rows_at), ids first at any offset,
        in one prepared statement for every offset (its filters, channel, provider and status,
        have whole indexes for the generic plan)."""
        if within_hour or offset >= pagination.DEFERRED_OFFSET:
            return run(
                _LOG_LIST.deep_rows_statement(self.lookups, offset=offset, limit=size, prepare=within_hour)
            )
        return run(self.rows_statement(offset, size))

    def rows_statement(self, offset: int, size: int) -> Statement:
        """A shallow page (offset below pagination.DEFERRED_OFFSET)."""
        return _LOG_LIST.rows_statement(self.lookups, offset=offset, limit=size)

    def rows_after(self, position: tuple[datetime, str] | None, limit: int) -> list:
        """A cursor page (authms.api.cursor): up to `limit` logs after `position`, (created_at,
        id), or from the newest; one prepared statement for every position, as a first page."""
        if position is None:
            return self.rows(0, limit)
        after_created_at, after_id = position
        values = {**self.lookups, "after_created_at": after_created_at, "after_id": after_id}
        return _LOG_CURSOR_PAGE.rows(values, offset=0, limit=limit)

    def older_than(self, moment: datetime) -> "LogList":
        """The same list, of its logs created before `moment` only."""
        return LogList(scope=self.lookups, filters={"created_at__lt": moment})

    def count_upto(self, limit: int) -> int:
        """How many logs match, counting no further than `limit` (in the list's order: the
        planner then walks the list's index and stops there, where unordered it may pick a
        sequential scan it expects to end early and read the whole table)."""
        return _LOG_LIST.count_upto(self.lookups, limit)


def log_list_for_user(*, actor: User, user_id: str | None = None, filters=None) -> LogList:
    """The caller's own logs, or — for a tenant admin — one user's logs of the caller's tenant."""
    target = user_id or actor.id
    if target != actor.id and not actor.is_tenant_admin:
        raise PermissionDeniedError(_("You may only read your own communication logs."))
    return LogList(
        scope={"tenant_id": actor.tenant_id, "user_id": target}, filters=LOG_FILTERS.lookups(filters or {})
    )


def log_list_for_admin(*, actor: User, filters=None) -> LogList:
    """All logs of the admin's tenant; every tenant for a platform admin."""
    if not actor.is_tenant_admin:
        raise PermissionDeniedError(_("Only tenant or platform administrators may read all logs."))
    scope = {} if actor.is_platform_admin else {"tenant_id": actor.tenant_id}
    return LogList(scope=scope, filters=ADMIN_LOG_FILTERS.lookups(filters or {}))


def _visible_batches(actor: User) -> QuerySet:
    """The batches the caller sent, owns, or administers."""
    if actor.is_platform_admin:
        return Batch.objects.all()
    batches = Batch.objects.filter(tenant_id=actor.tenant_id)
    return batches if actor.is_tenant_admin else batches.filter(Q(sender_id=actor.id) | Q(user_id=actor.id))


def batch_get(*, actor: User, batch_id: str) -> Batch:
    """A batch the caller may see; anyone else's (or none) is the same 404."""
    batch = _visible_batches(actor).filter(id=batch_id).first()
    if batch is None:
        raise NotFoundError(_("No batch %(id)r.") % {"id": batch_id})
    return batch


def batches_by_cancellation_key(*, actor: User, key: str) -> list[Batch]:
    """The caller's visible batches of its tenant sent with `key`."""
    return list(_visible_batches(actor).filter(tenant_id=actor.tenant_id, cancellation_key=key))


def batch_progress(*, actor: User, batch_id: str) -> dict:
    """Counts per status of a batch the caller sent, owns, or administers; else 404."""
    batch = batch_get(actor=actor, batch_id=batch_id)
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
        "send_at": batch.send_at,
        "cancellation_key": batch.cancellation_key or None,
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


# (label, hours, hours per chart point)
DASHBOARD_WINDOWS = (("24h", 24, 1), ("7d", 24 * 7, 6))
DASHBOARD_CACHE_SECONDS = 60
CHART_WIDTH, CHART_HEIGHT = 240, 60


def _counts(model, *, tenant_id: str | None, since=None, until=None, **filters) -> QuerySet:
    """Rows of LogCount or LogCountDelta of a tenant (None: every tenant) in [since, until)."""
    rows = model.objects.filter(**filters)
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    if since is not None:
        rows = rows.filter(hour__gte=since)
    if until is not None:
        rows = rows.filter(hour__lt=until)
    return rows


def _log_count_sums(
    *, by: tuple[str, ...], tenant_id: str | None, since=None, **filters
) -> dict[tuple, dict]:
    """Maintained log counts (LogCount plus unfolded deltas, in one statement so a fold in
    between can neither hide nor double a change) summed per `by`, from the hour `since`."""

    def part(model):
        return (
            _counts(model, tenant_id=tenant_id, since=since, **filters)
            .values(*by)
            .annotate(n=Sum("messages"), latency_ms_sum=Sum("latency_ms"), latency_n=Sum("latency_messages"))
            .order_by()
        )

    sums: dict[tuple, dict] = {}
    for row in part(LogCount).union(part(LogCountDelta), all=True):
        total = sums.setdefault(
            tuple(row[column] for column in by), {"n": 0, "latency_ms": 0, "latency_n": 0}
        )
        total["n"] += row["n"]
        total["latency_ms"] += row["latency_ms_sum"]
        total["latency_n"] += row["latency_n"]
    return {key: total for key, total in sums.items() if total["n"]}


# The filters each total answers (communication.services.log_counts.TOTALS).
_COUNTED_PER_USER = {"channel", "status", "status_detail"}
_COUNTED_PER_TENANT = {"channel", "provider", "status", "status_detail"}


def _count_conditions(**given) -> tuple[str, list]:
    """A WHERE clause over the count tables' columns for the values given (None or blank: no
    condition on that column), and its parameters."""
    columns = [
        column
        for column in ("tenant_id", "user_id", "channel", "provider", "status", "status_detail")
        if given.get(column)
    ]
    where = " AND ".join(f"{column} = %s" for column in columns) or "TRUE"  # names from the tuple above
    return where, [given[column] for column in columns]


def counted_log_total(*, tenant_id: str | None, user_id: str | None = None, **dimensions) -> int:
    """Exactly how many logs of one user (or of a tenant; None: every tenant) match
    `dimensions`, from the maintained totals and their unfolded deltas in one statement: no
    scan of the log table."""
    return run(_counted_total_statement(tenant_id=tenant_id, user_id=user_id, **dimensions))


def _counted_total_statement(*, tenant_id: str | None, user_id: str | None = None, **dimensions) -> Statement:
    table, answered = (
        ("communication_log_user_count", _COUNTED_PER_USER)
        if user_id
        else ("communication_log_tenant_count", _COUNTED_PER_TENANT)
    )
    if not set(dimensions) <= answered:
        raise ValueError(f"Not counted in {table}: {sorted(dimensions)}")
    where, params = _count_conditions(tenant_id=tenant_id, user_id=user_id, **dimensions)
    return Statement(
        connection,
        f"""SELECT coalesce(sum(messages), 0) FROM (
                SELECT messages FROM {table} WHERE {where}
                UNION ALL SELECT messages FROM {table}_delta WHERE {where}
            ) AS counts""",  # noqa: S608
        params * 2,
        read=lambda rows: int(rows[0][0]),
    )


def log_list_total(log_list: LogList) -> tuple[int, bool]:
    """How many logs a list has, without counting millions of rows: exact from the maintained
    counts when every filter is one they answer (see `_counted_total_statement_for`), else an
    exact COUNT of at most LOG_LIST_COUNT_CAP rows. Returns (total, capped); capped means "at
    least this many"."""
    counted = _counted_total_statement_for(log_list)
    if counted is not None:
        return run(counted)
    cap = settings.LOG_LIST_COUNT_CAP
    exact = log_list.count_upto(cap + 1)
    return (cap, True) if exact > cap else (exact, False)


def log_page_and_total(log_list: LogList, *, offset: int, size: int) -> tuple[list, int, bool] | None:
    """A shallow page of the list (offset below pagination.DEFERRED_OFFSET) and its total from
    the maintained counts, in one round trip: (rows, total, capped). None when the counts do not
    answer the filters: the paginator then reads the page first, and a short first page spares
    the capped COUNT (which, for a rare match such as a batch, may walk all of a user's logs;
    sent in the same round trip, it was slower than a second one)."""
    counted = _counted_total_statement_for(log_list)
    if counted is None:
        return None
    rows, (total, capped) = run_together(log_list.rows_statement(offset, size), counted)
    return rows, total, capped


def _counted_scope(log_list: LogList) -> tuple[str | None, str | None, dict] | None:
    """What a list asks the counts, read from the lookups the list itself runs on: (its tenant,
    None for every tenant; its user or None; its other lookups). None when its tenant scope and
    a tenant_id filter name two tenants: nothing matches, which its COUNT says."""
    lookups = dict(log_list.lookups)
    scope_tenant, asked_tenant = lookups.pop("tenant_id", None), lookups.pop("tenant_id__exact", None)
    if None not in (scope_tenant, asked_tenant) and scope_tenant != asked_tenant:
        return None
    return scope_tenant or asked_tenant, lookups.pop("user_id", None), lookups


def _counted_total_statement_for(log_list: LogList) -> Statement | None:
    """The list's (total, capped) from the counts, or None when its filters are not all ones
    they answer: one user's logs (the user list; the admin list by user_id) by channel, status
    and status detail, or between two times (`_day_total_statement`); a tenant's or every
    tenant's (the admin list) by those and provider."""
    scope = _counted_scope(log_list)
    if scope is None:
        return None
    tenant_id, user_id, given = scope
    if set(given) <= (_COUNTED_PER_USER if user_id else _COUNTED_PER_TENANT):
        counted = _counted_total_statement(tenant_id=tenant_id, user_id=user_id, **given)
        return replace(counted, read=lambda rows: (counted.read(rows), False))
    return _day_total_statement(tenant_id=tenant_id, user_id=user_id, times=given) if user_id else None


def _day_total_statement(*, tenant_id: str | None, user_id: str, times: dict) -> Statement | None:
    """(total, capped) of one user's logs of one tenant between two times (`times`, the list's
    other lookups: created_after, created_before and nothing else), exact without counting more
    than its two partial days: whole UTC days from the day totals (LogUserDayCount and unfolded
    deltas), the partial days at either end counted in the log table, each up to
    LOG_LIST_COUNT_CAP + 1 rows (past that the list is capped, as its COUNT would say). None for
    any other list."""
    if tenant_id is None or not set(times) <= {"created_at__gte", "created_at__lt"}:
        return None
    after, before = times.get("created_at__gte"), times.get("created_at__lt")
    first_day = None if after is None else _day_start(after + _JUST_UNDER_A_DAY)  # the first whole day
    end_day = None if before is None else _day_start(before)  # whole days end before it
    if first_day is not None and end_day is not None and first_day > end_day:
        partial_ranges, whole_days = [(after, before)], None  # both ends in one day
    else:
        partial_ranges, whole_days = [(after, first_day), (end_day, before)], (first_day, end_day)
    where, params = _count_conditions(tenant_id=tenant_id, user_id=user_id)  # the log table has both
    cap = settings.LOG_LIST_COUNT_CAP
    parts, part_params = [], []
    for start, end in partial_ranges:
        if start is not None and end is not None and start < end:
            parts.append(
                f'(SELECT COUNT(*) FROM (SELECT 1 FROM "communication_log" WHERE {where}'  # noqa: S608
                f" AND created_at >= %s AND created_at < %s LIMIT {int(cap) + 1}) AS part)"
            )
            adapt = connection.ops.adapt_datetimefield_value
            part_params += [*params, adapt(start), adapt(end)]
    partials = len(parts)
    if whole_days is not None:
        day_where, day_params = where, list(params)
        for bound, operator in zip(whole_days, (">=", "<"), strict=True):
            if bound is not None:
                day_where += f" AND day {operator} %s"
                day_params.append(connection.ops.adapt_datefield_value(bound.date()))
        parts.append(
            f"""(SELECT coalesce(sum(messages), 0) FROM (
                    SELECT messages FROM communication_log_user_day_count WHERE {day_where}
                    UNION ALL SELECT messages FROM communication_log_user_day_count_delta WHERE {day_where}
                ) AS days)"""  # noqa: S608
        )
        part_params += day_params * 2

    def total(rows) -> tuple[int, bool]:
        counts = [int(count) for count in rows[0]]
        if any(count > cap for count in counts[:partials]):
            return cap, True
        return sum(counts), False

    return Statement(connection, f"SELECT {', '.join(parts) or '0'}", part_params, read=total)


_JUST_UNDER_A_DAY = timedelta(days=1, microseconds=-1)


def _day_start(moment: datetime) -> datetime:
    """The UTC midnight at or before `moment`."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# The filters the hourly counts answer (LogCount's groups).
_COUNTED_PER_HOUR = {"channel", "provider", "status"}
_SHORTEST_WINDOW = timedelta(hours=1)


def _utc(value) -> datetime:
    """An hour as the counts' raw SQL returns it: aware on PostgreSQL, UTC text (or a naive
    datetime) on SQLite."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def _hour_at(tenant_id: str | None, dimensions: dict, *, offset: int, share: float) -> tuple | None:
    """The hour of creation of a tenant's (None: every tenant's) `offset`-th newest log
    matching `dimensions` (from 0), and how many matching logs are newer than that hour; None
    past the last. Read from the hourly counts and their unfolded deltas, for an offset about
    `share` of the way back.

    Windows of hours ending at the newest, each one statement over both tables (so a fold in
    between can neither hide nor double a change) that sums its hours newest first and returns
    the hour where the running sum passes the offset (a window function): one row back, not one
    per hour. The first window spans `share` of the tenant's time with logs (and a quarter
    more), assuming they are spread evenly; each later one twice as far back, for when they are
    not."""
    where, params = _count_conditions(tenant_id=tenant_id, **dimensions)
    span_where, span_params = _count_conditions(tenant_id=tenant_id)  # the ends of an index range
    ends = ", ".join(
        f"(SELECT {end}(hour) FROM {table} WHERE {span_where})"  # noqa: S608 (names from fixed tuples)
        for table in ("communication_log_count", "communication_log_count_delta")
        for end in ("min", "max")
    )
    first_row = itemgetter(0)
    ends_row = run(Statement(connection, f"SELECT {ends}", span_params * 4, read=first_row))  # noqa: S608
    hours = [_utc(hour) for hour in ends_row if hour is not None]
    if not hours:
        return None
    oldest, until = min(hours), max(hours) + timedelta(hours=1)
    span = max((until - oldest) * min(1.0, share * 1.25), _SHORTEST_WINDOW)
    adapt = connection.ops.adapt_datetimefield_value
    while True:
        since = until - span
        window = [*params, adapt(since), adapt(until)]
        found = run(
            Statement(
                connection,
                f"""SELECT hour, through - logs FROM (
                        SELECT hour, logs, sum(logs) OVER (ORDER BY hour DESC ROWS UNBOUNDED PRECEDING) AS through
                        FROM (
                            SELECT hour, sum(messages) AS logs FROM (
                                SELECT hour, messages FROM communication_log_count
                                WHERE {where} AND hour >= %s AND hour < %s
                                UNION ALL SELECT hour, messages FROM communication_log_count_delta
                                WHERE {where} AND hour >= %s AND hour < %s
                            ) AS counts GROUP BY hour
                        ) AS hours
                    ) AS running
                    WHERE through > %s ORDER BY hour DESC LIMIT 1""",  # noqa: S608
                [*window, *window, offset],
                read=lambda rows: rows[0] if rows else None,
            )
        )
        if found is not None:
            hour, newer = found
            return _utc(hour), int(newer)
        if since <= oldest:  # every hour summed: the offset is past the last log
            return None
        span *= 2


# From this offset on, an admin list page whose filters the hourly counts answer skips hours.
HOUR_SKIP_OFFSET = 10_000


def log_rows_at(log_list: LogList, *, offset: int, size: int, total: int | None) -> list | None:
    """A deep page of the admin list without skipping `offset` index entries: the hourly counts
    say in which hour of creation the offset falls and how many logs are newer, and the page
    skips only within that hour. None when the counts do not answer the filters (or the offset
    is shallow): the caller skips as usual. `total`, the list's (None on the first page, which
    is never deep), sizes the first window."""
    scope = _counted_scope(log_list) if offset >= HOUR_SKIP_OFFSET else None
    if scope is None or scope[1] is not None or not set(scope[2]) <= _COUNTED_PER_HOUR:
        return None
    tenant_id, _user_id, dimensions = scope
    found = _hour_at(tenant_id, dimensions, offset=offset, share=offset / max(1, total))
    if found is None:
        return []
    hour, newer = found
    return log_list.older_than(hour + timedelta(hours=1)).rows(offset - newer, size, within_hour=True)


def counted_log_dates(*, tenant_id: str | None, kind: str, since=None, until=None, **dimensions) -> list:
    """The years, months or days (`kind`) in [since, until) with logs, from the counts' hours."""
    found = set()
    for model in (LogCount, LogCountDelta):
        rows = _counts(model, tenant_id=tenant_id, since=since, until=until, **dimensions)
        found.update(rows.exclude(messages=0).datetimes("hour", kind))
    return sorted(found)


def counted_log_providers(*, tenant_id: str | None) -> list[str]:
    """The providers a tenant's (or any tenant's) logs name."""
    found = set()
    for model in (LogCount, LogCountDelta):
        rows = _counts(model, tenant_id=tenant_id).exclude(messages=0)
        found.update(rows.values_list("provider", flat=True).distinct().order_by())
    return sorted(found)


def delivery_dashboard(*, actor: User) -> dict:
    """Per channel and provider: sent, delivered, failed, pending and rates for the last 24 hours
    and 7 days, the top failure reasons, a delivery-rate and latency chart per provider and, for
    the platform admin, a line per tenant. Read from the maintained counts (never a COUNT over
    the log table); windows start on the hour, so each figure is exactly the list it links to.
    Cached a minute per tenant."""
    scope = "all" if actor.is_platform_admin else actor.tenant_id
    key = f"dashboard:{scope}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    tenant_id = None if actor.is_platform_admin else actor.tenant_id
    now = timezone.now()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    starts = {label: this_hour - timedelta(hours=hours - 1) for label, hours, _step in DASHBOARD_WINDOWS}
    earliest = min(starts.values())
    hourly = _log_count_sums(
        by=("hour", "channel", "provider", "status"), tenant_id=tenant_id, since=earliest
    )
    windows = []
    for label, hours, step in DASHBOARD_WINDOWS:
        start = starts[label]
        in_window = {key: total for key, total in hourly.items() if key[0] >= start}
        window = {
            "label": label,
            "start": start,
            "lines": _dashboard_lines(in_window, start),
            "charts": _provider_charts(in_window, start=start, points=hours // step, step=step),
            "top_failures": [
                {"error": error, "n": total["n"]}
                for (error,), total in sorted(
                    _log_count_sums(
                        by=("error",), tenant_id=tenant_id, since=start, status=Status.FAILED
                    ).items(),
                    key=lambda item: (-item[1]["n"], item[0]),
                )[:5]
            ],
        }
        if actor.is_platform_admin:
            window["tenants"] = _tenant_lines(
                _log_count_sums(by=("tenant_id", "status"), tenant_id=None, since=start)
            )
        windows.append(window)
    dashboard = {"windows": windows, "generated_at": now}
    cache.set(key, dashboard, DASHBOARD_CACHE_SECONDS)
    return dashboard


def _status_figures(counts: dict[str, int]) -> dict:
    """The figures of one dashboard line from its counts per status."""
    total = sum(counts.values())
    finished = total - counts[Status.PENDING]
    accepted = counts[Status.SENT] + counts[Status.DELIVERED]
    return {
        "total": total,
        **counts,
        "accepted_rate": round(100 * accepted / finished, 1) if finished else None,
        "delivery_rate": round(100 * counts[Status.DELIVERED] / finished, 1) if finished else None,
        "bars": _bar_widths(counts, total),
    }


def _dashboard_lines(hourly: dict[tuple, dict], start) -> list[dict]:
    per_group: dict[tuple[str, str], dict[str, int]] = {}
    for (_hour, channel, provider, status), total in hourly.items():
        per_group.setdefault((channel, provider), dict.fromkeys(Status.values, 0))[status] += total["n"]
    return [
        {
            "channel": channel,
            "provider": provider,
            # The logs list showing these figures (the template adds the status).
            "list_query": urlencode(
                {"channel__exact": channel, "provider": provider, "created_at__gte": start.isoformat()}
            ),
            **_status_figures(counts),
        }
        for (channel, provider), counts in sorted(per_group.items())
    ]


def _tenant_lines(per_tenant: dict[tuple, dict]) -> list[dict]:
    """The platform admin's breakdown: one line per tenant, largest first."""
    counts: dict[str, dict[str, int]] = {}
    for (tenant_id, status), total in per_tenant.items():
        counts.setdefault(tenant_id, dict.fromkeys(Status.values, 0))[status] += total["n"]
    names = dict(Tenant.objects.filter(id__in=counts).values_list("id", "name"))
    lines = [
        {"tenant_id": tenant_id, "tenant": names.get(tenant_id, tenant_id), **_status_figures(by_status)}
        for tenant_id, by_status in counts.items()
    ]
    return sorted(lines, key=lambda line: (-line["total"], str(line["tenant"])))


def _provider_charts(hourly: dict[tuple, dict], *, start, points: int, step: int) -> list[dict]:
    """Per provider, delivery rate (delivered of those finished) and mean delivery latency over
    `points` buckets of `step` hours, as SVG polylines (drawn here: no chart library, no CDN)."""
    buckets: dict[str, list[dict]] = {}
    for (hour, _channel, provider, status), total in hourly.items():
        series = buckets.setdefault(
            provider,
            [{"finished": 0, "delivered": 0, "latency_ms": 0, "latency_n": 0} for _ in range(points)],
        )
        bucket = series[int((hour - start).total_seconds() // 3600) // step]
        if status != Status.PENDING:
            bucket["finished"] += total["n"]
        if status == Status.DELIVERED:
            bucket["delivered"] += total["n"]
        bucket["latency_ms"] += total["latency_ms"]
        bucket["latency_n"] += total["latency_n"]
    charts = []
    for provider, series in sorted(buckets.items()):
        rates = [100 * b["delivered"] / b["finished"] if b["finished"] else None for b in series]
        latencies = [b["latency_ms"] / b["latency_n"] / 1000 if b["latency_n"] else None for b in series]
        top = max((value for value in latencies if value is not None), default=0)
        charts.append(
            {
                "provider": provider,
                "rate_lines": _polylines(rates, top=100),
                "latency_lines": _polylines(latencies, top=top),
                "latency_top": round(top, 1),
                "points": [
                    {"at": start + timedelta(hours=i * step), "rate": rate, "latency": latency}
                    for i, (rate, latency) in enumerate(zip(rates, latencies, strict=True))
                ],
            }
        )
    return charts


def _polylines(values: list[float | None], *, top: float) -> list[str]:
    """SVG `points` strings, one per run of known values (a gap where nothing was measured)."""
    step = CHART_WIDTH / max(len(values) - 1, 1)
    lines, current = [], []
    for i, value in enumerate(values):
        if value is None:
            current and lines.append(current)
            current = []
            continue
        height = CHART_HEIGHT * value / top if top else 0
        current.append(f"{i * step:.1f},{CHART_HEIGHT - height:.1f}")
    current and lines.append(current)
    # A single point still shows: draw it as a short flat line.
    return [" ".join(line if len(line) > 1 else [*line, line[0]]) for line in lines]


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


def device_list(*, actor: User, user_id: str | None = None) -> QuerySet:
    """The caller's own push devices, or — for a tenant admin — one user's of the caller's
    tenant (a platform admin: of any tenant)."""
    target = user_id or actor.id
    if target == actor.id:
        return Device.objects.filter(tenant_id=actor.tenant_id, user_id=actor.id)
    if not actor.is_tenant_admin:
        raise PermissionDeniedError(_("You may only list your own devices."))
    users = User.objects.all() if actor.is_platform_admin else User.objects.filter(tenant_id=actor.tenant_id)
    owner = users.filter(id=target).first()
    if owner is None:
        raise NotFoundError(_("No user %(id)r.") % {"id": target})
    return Device.objects.filter(tenant_id=owner.tenant_id, user_id=owner.id)


def device_get(*, actor: User, device_id: str) -> Device:
    """One device the caller may manage: their own; a tenant admin's tenant's; any for a
    platform admin. Anyone else's (or none) is the same 404."""
    devices = Device.objects.all()
    if not actor.is_platform_admin:
        devices = devices.filter(tenant_id=actor.tenant_id)
        if not actor.is_tenant_admin:
            devices = devices.filter(user_id=actor.id)
    device = devices.filter(id=device_id).first()
    if device is None:
        raise NotFoundError(_("Device not found."))
    return device


def push_device_targets(*, device_ids: list[str]) -> dict[str, dict[str, str]]:
    """Where each active device of `device_ids` is at its push service (token; Web Push keys)."""
    if not device_ids:
        return {}
    rows = Device.objects.filter(id__in=device_ids, active=True).values("id", "token", "p256dh", "auth")
    return {row.pop("id"): row for row in rows}


def admin_tenant_get(*, actor: User, tenant_id: str | None) -> Tenant:
    """The tenant an admin reads or manages (usage, delivery controls): its own; any for a
    platform admin; anyone else's is 404."""
    if tenant_id is None or tenant_id == actor.tenant_id:
        return Tenant.objects.get(id=actor.tenant_id)
    tenant = Tenant.objects.filter(id=tenant_id).first() if actor.is_platform_admin else None
    if tenant is None:
        raise NotFoundError(_("No tenant %(id)r.") % {"id": tenant_id})
    return tenant


def preferences_get(*, user: User) -> dict:
    """Every category × channel as it applies to the user (their choice, else the tenant's
    default, else on), with their quiet hours and what applies of them."""
    tenant = Tenant.objects.get(id=user.tenant_id)
    own = {
        (category, channel): enabled
        for category, channel, enabled in Preference.objects.filter(user_id=user.id).values_list(
            "category", "channel", "enabled"
        )
    }
    lines = []
    for category in Category.values:
        for channel in Channel.values:
            chosen = own.get((category, channel))
            in_defaults = channel in (tenant.preference_defaults or {}).get(category, {})
            lines.append(
                {
                    "category": category,
                    "channel": channel,
                    "enabled": chosen if chosen is not None else tenant_default(tenant, category, channel),
                    "critical": category in CRITICAL_CATEGORIES,
                    "source": "user" if chosen is not None else "tenant" if in_defaults else "default",
                }
            )
    window = tenant.quiet_hours if user.quiet_hours == "" else user.quiet_hours
    return {
        "time_zone": user.time_zone,
        "quiet_hours": user.quiet_hours,
        "effective_quiet_hours": window or QUIET_HOURS_OFF,
        "effective_time_zone": user.time_zone or tenant.time_zone or settings.CAPS_TIME_ZONE,
        "language": user.language,
        "preferences": lines,
    }


def webhook_endpoints(*, actor: User) -> QuerySet:
    """The tenant's endpoints, for its admins (a platform admin: every tenant's)."""
    if not actor.is_tenant_admin:
        raise PermissionDeniedError(_("Only tenant admins may manage webhooks."))
    endpoints = WebhookEndpoint.objects.order_by("-created_at")
    return endpoints if actor.is_platform_admin else endpoints.filter(tenant_id=actor.tenant_id)


def webhook_endpoint_get(*, actor: User, endpoint_id: str) -> WebhookEndpoint:
    endpoint = webhook_endpoints(actor=actor).filter(id=endpoint_id).first()
    if endpoint is None:
        raise NotFoundError(_("Webhook endpoint not found."))
    return endpoint


def webhook_deliveries(*, endpoint: WebhookEndpoint) -> QuerySet:
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related("attempt_log")
        .order_by("-id")
    )


def webhook_delivery_get(*, actor: User, delivery_id: str) -> WebhookDelivery:
    delivery = (
        WebhookDelivery.objects.filter(endpoint__in=webhook_endpoints(actor=actor), id=delivery_id)
        .select_related("event", "endpoint")
        .first()
        if str(delivery_id).isdigit()
        else None
    )
    if delivery is None:
        raise NotFoundError(_("Webhook delivery not found."))
    return delivery
