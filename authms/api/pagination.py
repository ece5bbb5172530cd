"""Page-number pagination with the contract's rules.

`page`/`page_size` must be positive integers (else 400 naming the parameter);
`page_size` above the maximum is clamped, not rejected; a page past the end is an
empty 200. Two queries at most: a COUNT and one slice. The first page is read first
and counts only when it is full (a short one is the whole result); later pages count
first and skip the slice when they start beyond the total. A view that can read a
shallow page and its total together (`page_and_total`: the log lists) does so in one
round trip.
"""

from functools import cache

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from authms.api.envelope import list_envelope
from authms.errors import ValidationError


def _positive_int(params, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    raw = raw.strip()
    if not raw.isdigit() or int(raw) < 1:
        message = _("%(name)s must be a positive integer (1, 2, 3, …), got %(value)r.") % {
            "name": name,
            "value": raw,
        }
        raise ValidationError.for_field(name, message)
    return int(raw)


def page_params(params) -> tuple[int, int]:
    page = _positive_int(params, "page", 1)
    page_size = min(_positive_int(params, "page_size", settings.PAGE_SIZE_DEFAULT), settings.PAGE_SIZE_MAX)
    return page, page_size


# PostgreSQL's OFFSET is a bigint: a page beyond it is empty without asking.
_LARGEST_OFFSET = 2**62
# Past this offset a page reads its rows' ids first (an index-only scan where the list's index
# covers its filters and order), then just those rows: the database skips index entries, not
# whole rows it would fetch and throw away.
DEFERRED_OFFSET = 1_000


def rows_at(queryset, offset: int, size: int) -> list:
    """`size` rows of `queryset` from `offset`, in its order."""
    if offset < DEFERRED_OFFSET:
        return list(queryset[offset : offset + size])
    ids = list(queryset.values_list("pk", flat=True)[offset : offset + size])
    by_id = {row.pk: row for row in queryset.filter(pk__in=ids)}
    return [by_id[row_id] for row_id in ids if row_id in by_id]  # one deleted in between is gone


class PagePagination(BasePagination):
    """Counts with the view's `count_rows` (PaginatedListView: an exact COUNT; the log lists:
    maintained counts or a capped COUNT, reported as `total_is_capped`)."""

    def paginate_queryset(self, queryset, request, view=None):
        self.page, self.page_size = page_params(request.query_params)
        self.view, self.capped = view, False
        offset = (self.page - 1) * self.page_size
        together = view.page_and_total(queryset, offset, self.page_size) if offset < DEFERRED_OFFSET else None
        if together is not None:
            rows, self.total, self.capped = together
            return rows
        if self.page == 1:
            rows = view.rows_at(queryset, 0, self.page_size, total=None)
            # A short first page is the whole result: its length is the total.
            if len(rows) < self.page_size:
                self.total = len(rows)
            else:
                self.total, self.capped = view.count_rows(queryset)
            return rows
        # Later pages count first: an offset past an exact total is then an empty page
        # without a query (past a capped one, the rows are read: there may be more).
        self.total, self.capped = view.count_rows(queryset)
        if (offset >= self.total and not self.capped) or offset >= _LARGEST_OFFSET:
            return []
        return view.rows_at(queryset, offset, self.page_size, total=self.total)

    def get_paginated_response(self, data):
        extra = {"total_is_capped": self.capped} if self.view.capped_totals else {}
        body = list_envelope(items=data, total=self.total, page=self.page, page_size=self.page_size, **extra)
        if self.capped:  # the total is a floor: a full page may have more after it
            body["pagination"]["has_next"] = body["pagination"]["has_next"] or len(data) == self.page_size
        return Response(body)

    def get_paginated_response_schema(self, schema):
        return list_response_schema(schema)

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "page",
                "in": "query",
                "required": False,
                "description": "Page number, from 1 (default 1).",
                "schema": {"type": "integer", "minimum": 1, "default": 1},
            },
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "description": f"Items per page (default {settings.PAGE_SIZE_DEFAULT}; "
                f"values above {settings.PAGE_SIZE_MAX} are clamped).",
                "schema": {"type": "integer", "minimum": 1, "default": settings.PAGE_SIZE_DEFAULT},
            },
        ]


PAGE_INFO_SCHEMA = {
    "type": "object",
    "properties": {
        "page": {"type": "integer", "example": 1},
        "page_size": {"type": "integer", "example": 20},
        "total": {"type": "integer", "example": 42},
        "total_pages": {"type": "integer", "example": 3},
        "has_next": {"type": "boolean"},
        "has_prev": {"type": "boolean"},
    },
    "required": ["page", "page_size", "total", "total_pages", "has_next", "has_prev"],
}


def list_response_schema(item_schema, **extra_properties) -> dict:
    return {
        "type": "object",
        "properties": {
            "code": {"type": "integer", "example": 200},
            "message": {"type": "string", "example": "OK"},
            "items": item_schema,
            "total": {"type": "integer", "example": 42},
            "pagination": PAGE_INFO_SCHEMA,
            **extra_properties,
            "timestamp": {"type": "string", "format": "date-time"},
        },
        "required": ["code", "message", "items", "total", "pagination", "timestamp"],
    }


@cache
def _page_info_class():
    """One PageInfo component for every list envelope (two would clash in the schema)."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    return type(
        inline_serializer(
            name="PageInfo",
            fields={
                name: serializers.IntegerField() if spec["type"] == "integer" else serializers.BooleanField()
                for name, spec in PAGE_INFO_SCHEMA["properties"].items()
            },
        )
    )


def list_envelope_schema(item_serializer_class, component_name: str, **extra_properties):
    """A named list-envelope schema for non-paginated list answers (e.g. the bulk send result)."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    fields = {
        "code": serializers.IntegerField(),
        "message": serializers.CharField(),
        "items": item_serializer_class(many=True),
        "total": serializers.IntegerField(),
        "pagination": _page_info_class()(),
        **{
            name: field if isinstance(field, serializers.Field) else serializers.CharField()
            for name, field in extra_properties.items()
        },
        "timestamp": serializers.DateTimeField(),
    }
    return inline_serializer(name=component_name, fields=fields)
