"""Request ids: echo a sane incoming `X-Request-ID` or make one, and tag log records with it."""

import logging
import re
import uuid
from contextvars import ContextVar

from django.core.signals import request_finished
from django.utils.translation import gettext

_current_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    return _current_request_id.get()


class RequestIdMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(self.header, "")
        request_id = incoming if _ACCEPTABLE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Not reset on the way out: Django logs "Not Found: …" (django.request) after the
        # middleware returns. request_finished clears it once the response is closed.
        _current_request_id.set(request_id)
        response = self.get_response(request)
        response[self.header] = request_id
        return response


def _forget_request_id(**_kwargs):
    _current_request_id.set("-")


request_finished.connect(_forget_request_id, dispatch_uid="authms.forget_request_id")


class RequestIdLogFilter(logging.Filter):
    def filter(self, record):
        record.request_id = current_request_id()
        return True


class RejectNulBytesMiddleware:
    """A NUL byte in the path or query string is always malformed input, and PostgreSQL
    refuses it with an error. Answer 400 before any view can pass one to a query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            from authms.api.exceptions import json_error_response

            return json_error_response(400, gettext("The request contains a NUL byte."))
        return self.get_response(request)
