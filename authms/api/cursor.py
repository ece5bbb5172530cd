"""Keyset (cursor) pages for lists ordered newest first by (created_at, id).

A cursor names the last row a client was given; the next page is what comes strictly after it
in that order, so rows inserted meanwhile never shift a page (page numbers do), and a page costs
the same at any depth. Cursors are opaque; a malformed or tampered one is a 400.
"""

import base64
import binascii
import json
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from authms.api.envelope import envelope
from authms.errors import ValidationError


def older_than(created_at: datetime, row_id: str, *, inclusive: bool = False) -> Q:
    """Rows before (created_at, row_id) in (created_at, id) order; with `inclusive`, that row too.

    It leads with a plain bound on created_at, which the OR after it implies: PostgreSQL starts
    an index scan at a bound but not at an OR, and would otherwise read (and throw away) every
    row newer than the cursor. Likewise `newer_than`."""
    same_moment = (
        Q(created_at=created_at, id__lte=row_id) if inclusive else Q(created_at=created_at, id__lt=row_id)
    )
    return Q(created_at__lte=created_at) & (Q(created_at__lt=created_at) | same_moment)


def newer_than(created_at: datetime, row_id: str) -> Q:
    """Rows after (created_at, row_id) in (created_at, id) order."""
    return Q(created_at__gte=created_at) & (
        Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=row_id)
    )


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = parse_datetime(created)
        if moment is None or moment.tzinfo is None or not isinstance(row_id, str) or len(row_id) > 64:
            raise ValueError(cursor)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValidationError.for_field(
            "cursor", _("Not a cursor of this list; start without one.")
        ) from None
    return moment, row_id


def cursor_params(params) -> str | None:
    """The cursor, "" for the first page in cursor mode, or None for page numbers; mixing the
    two is a 400."""
    if "cursor" not in params:
        return None
    if "page" in params:
        raise ValidationError.for_field("cursor", _("Use cursor or page, not both."))
    return params.get("cursor", "")


def rows_after(queryset: QuerySet, position: tuple[datetime, str] | None, limit: int) -> list:
    """Up to `limit` rows of `queryset` after `position` (created_at, id) in the cursor order,
    newest first (None: from the newest)."""
    if position is not None:
        queryset = queryset.filter(older_than(*position))
    return list(queryset.order_by("-created_at", "-id")[:limit])


def cursor_page(read_rows, *, cursor: str, size: int, serialize) -> dict:
    """One page after `cursor` ("" = the first) in the list envelope with `next_cursor`
    (null at the end) and `has_more`. `read_rows(position, limit)` reads as `rows_after` does."""
    rows = read_rows(decode_cursor(cursor) if cursor else None, size + 1)
    has_more = len(rows) > size
    rows = rows[:size]
    return envelope(
        200,
        _("OK"),
        items=serialize(rows),
        next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if has_more else None,
        has_more=has_more,
    )


def page_or_cursor_schema(item_serializer_class, name: str, page_name: str = "", **page_fields):
    """The answer of a list with both modes: `page_name` (default `{name}Page`: page numbers)
    or `{name}CursorPage`."""
    from drf_spectacular.utils import PolymorphicProxySerializer, inline_serializer
    from rest_framework import serializers

    from authms.api.pagination import list_envelope_schema

    return PolymorphicProxySerializer(
        component_name=f"{name}List",
        serializers=[
            list_envelope_schema(item_serializer_class, page_name or f"{name}Page", **page_fields),
            inline_serializer(
                name=f"{name}CursorPage",
                fields={
                    "code": serializers.IntegerField(),
                    "message": serializers.CharField(),
                    "items": item_serializer_class(many=True),
                    "next_cursor": serializers.CharField(allow_null=True),
                    "has_more": serializers.BooleanField(),
                    "timestamp": serializers.DateTimeField(),
                },
            ),
        ],
        resource_type_field_name=None,
    )


def page_or_cursor_parameters():
    """`page`, `page_size` (the paginator's own) and `cursor`: a schema given as
    page_or_cursor_schema is not seen as a paginated list, so drf-spectacular does not add the
    paginator's parameters by itself."""
    from drf_spectacular.utils import OpenApiParameter

    from authms.api.pagination import PagePagination

    return [
        *(
            OpenApiParameter(spec["name"], int, description=spec["description"])
            for spec in PagePagination().get_schema_operation_parameters(view=None)
        ),
        OpenApiParameter(
            "cursor",
            str,
            description='Cursor mode: "" for the first page, then each answer\'s next_cursor (not with '
            "page): stable while rows arrive, the same cost at any depth; the answer has next_cursor "
            "and has_more instead of totals.",
        ),
    ]
