import re

from django.urls import re_path

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def api_path(route: str, view, name: str):
    """A route that answers with or without a trailing slash, never redirecting.

    `{name}` segments capture one path segment: `notifications/{pk}/read`.
    """
    pattern = _PLACEHOLDER.sub(r"(?P<\1>[^/]+)", route.strip("/"))
    return re_path(rf"^{pattern}/?$", view, name=name)
