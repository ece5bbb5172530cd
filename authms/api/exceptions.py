"""One exception handler: every error, expected or not, leaves as the envelope."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.utils.translation import gettext, gettext_lazy
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken

from authms.api.envelope import envelope
from authms.errors import ApplicationError
from authms.middleware import current_request_id

logger = logging.getLogger("authms.api")


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = gettext_lazy("The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE allows.")
    default_code = "request_too_large"


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → `{"field": [...], "recipients[2]": [...]}`."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
            for field, messages in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    if isinstance(detail, list) and detail and all(isinstance(item, str) for item in detail):
        return {prefix or "non_field_errors": [str(item) for item in detail]}
    if isinstance(detail, list):
        flat = {}
        for index, item in enumerate(detail):
            for field, messages in flatten_errors(item, f"{prefix}[{index}]").items():
                flat.setdefault(field, []).extend(messages)
        return flat
    return {prefix or "non_field_errors": [str(detail)]}


def summarise_errors(errors: dict[str, list[str]]) -> str:
    parts = [
        messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
        for field, messages in errors.items()
        if messages
    ]
    return gettext("Invalid input.") + (" " + " ".join(parts) if parts else "")


def detail_message(exc: exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(exc, InvalidToken) and isinstance(detail, dict):
        messages = detail.get("messages") or []
        if messages:
            return gettext("Authentication token rejected: %(reason)s.") % {"reason": messages[0]["message"]}
    if isinstance(detail, dict):
        detail = detail.get("detail", next(iter(detail.values()), ""))
    if isinstance(detail, list):
        detail = detail[0] if detail else ""
    return str(detail)


def envelope_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        body = envelope(exc.status_code, exc.message)
        if exc.errors:
            body["errors"] = exc.errors
        if exc.data is not None:
            body["data"] = exc.data
        return Response(body, status=exc.status_code)

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(str(exc))

    if not isinstance(exc, exceptions.APIException):
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(internal_error_body(), status=500)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        body = envelope(exc.status_code, summarise_errors(errors), errors=errors)
    else:
        body = envelope(exc.status_code, detail_message(exc))
    return Response(body, status=exc.status_code, headers=headers)


def internal_error_body() -> dict:
    message = gettext("Internal server error. Quote request id %(id)s when reporting it.")
    return envelope(500, message % {"id": current_request_id()})


def json_error_response(status_code: int, message: str = "") -> JsonResponse:
    """For Django-level handlers (unmatched URL, crash outside DRF) under the API prefix."""
    body = internal_error_body() if status_code == 500 else envelope(status_code, message)
    return JsonResponse(body, status=status_code)
