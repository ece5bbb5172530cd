"""The response envelope every endpoint answers with: `{code, message, …, timestamp}`."""

from datetime import UTC, datetime

from django.utils.translation import gettext as _
from rest_framework.response import Response

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def rfc3339(value: datetime | None) -> str | None:
    """`2026-04-15T10:00:00Z`, or None for an absent time."""
    return value.astimezone(UTC).strftime(RFC3339) if value is not None else None


def now_rfc3339() -> str:
    return rfc3339(datetime.now(UTC))


def envelope(status_code: int, message, **fields) -> dict:
    return {"code": status_code, "message": str(message), **fields, "timestamp": now_rfc3339()}


def data_response(data, *, message=None, status_code: int = 200) -> Response:
    return Response(envelope(status_code, message or _("OK"), data=data), status=status_code)


def list_envelope(*, items: list, total: int, page: int, page_size: int, **extra) -> dict:
    total_pages = (total + page_size - 1) // page_size if page_size else 0
    pagination = {
        "page": page,
        "page_size": page_size,
        "total": total,
        "total_pages": total_pages,
        "has_next": page < total_pages,
        "has_prev": page > 1,
    }
    return envelope(200, _("OK"), items=items, total=total, pagination=pagination, **extra)
