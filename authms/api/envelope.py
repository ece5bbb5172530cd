"""The response envelope every endpoint answers with: `{code, message, …, timestamp}`."""

from datetime import UTC, datetime

from rest_framework.response import Response


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(status_code: int, message, **fields) -> dict:
    return {"code": status_code, "message": str(message), **fields, "timestamp": now_rfc3339()}


def data_response(data, *, message="OK", status_code: int = 200) -> Response:
    return Response(envelope(status_code, message, data=data), status=status_code)


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
    return envelope(200, "OK", items=items, total=total, pagination=pagination, **extra)
