"""Strict input fields shared by the API serializers."""

from collections.abc import Callable

from django.utils.translation import gettext, gettext_lazy
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A string and nothing else: DRF's CharField would turn 123 or true into text."""

    default_error_messages = {"invalid": gettext_lazy("Must be a string.")}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class BoundedListField(serializers.ListField):
    """A list whose size is checked before its items, so an oversized list costs one error,
    not one per item. `max_items` is a number or a callable read at request time (a setting)."""

    def __init__(self, *, max_items: int | Callable[[], int], **kwargs):
        self.max_items = max_items
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        limit = self.max_items() if callable(self.max_items) else self.max_items
        if isinstance(data, list) and len(data) > limit:
            raise serializers.ValidationError(
                gettext("At most %(limit)s items; got %(count)s.")
                % {"limit": f"{limit:,}", "count": f"{len(data):,}"}
            )
        return super().to_internal_value(data)
