"""Body parsers that refuse, once and for every endpoint, what no view can store.

JSON nested past `MAX_JSON_DEPTH` (Python's parser raises RecursionError on deep input),
and text holding NUL bytes or lone surrogates (PostgreSQL refuses NUL in text and jsonb;
a lone surrogate cannot be encoded as UTF-8) answer 400 here, at the edge, instead of as
a 500 from whichever query later meets them.
"""

import re

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

MAX_JSON_DEPTH = 32


def unstorable_text_reason(text: str) -> str | None:
    """Why a string cannot be stored (NUL byte, lone surrogate), or None when it can."""
    if "\x00" in text:
        return _("contains a NUL byte")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _("contains a lone surrogate (not valid Unicode)")
    return None


_UNPRINTABLE = re.compile(r"[\x00-\x1f\ud800-\udfff]")


def _child_path(path: str, key) -> str:
    """`metadata.note`, `recipients[2]`; control characters and surrogates in keys escaped
    (`b\\u0000ad`) so the error itself can be encoded and read."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    key = _UNPRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", key)
    return f"{path}.{key}" if path else key


def _unstorable(field: str, reason: str) -> ValidationError:
    return ValidationError({field: [_("The value %(reason)s.") % {"reason": reason}]})


def check_storable(value, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Walk parsed JSON without recursion: ParseError past `max_depth`, a ValidationError
    naming the field (`metadata.note`, `recipients[2]`) for unstorable text."""
    stack = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise ParseError(_("JSON is nested deeper than %(max)d levels.") % {"max": max_depth})
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(key, str):
                    stack.append((key, depth, _child_path(path, key)))
                stack.append((child, depth + 1, _child_path(path, key)))
        elif isinstance(item, str) and (reason := unstorable_text_reason(item)):
            raise _unstorable(path or "non_field_errors", reason)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(
                _("JSON is nested deeper than %(max)d levels.") % {"max": MAX_JSON_DEPTH}
            ) from None
        check_storable(data)
        return data


def _check_query_dict(data) -> None:
    for key, values in data.lists():
        for text in (key, *values):
            if isinstance(text, str) and (reason := unstorable_text_reason(text)):
                raise _unstorable(_child_path("", key), reason)


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check_query_dict(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _check_query_dict(result.data)
        return result


# For receivers whose senders choose the encoding (provider webhooks, mail clients).
FORM_AND_JSON_PARSERS = [FormParser, MultiPartParser, JSONParser]
