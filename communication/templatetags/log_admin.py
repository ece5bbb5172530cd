"""The logs list's date hierarchy from the maintained log counts.

Django's own asks the filtered queryset for DISTINCT years, months or days: a scan of every
matching log (seconds at 10M). This one answers the same questions from the counts' hours, so
it costs the same at any size. The dates follow the tenant, channel, status and provider
filters; other filters (a search, the status detail, a date range) do not narrow them, so a
date offered may hold no log matching those.
"""

from datetime import datetime

from django import template
from django.contrib.admin.templatetags.admin_list import date_hierarchy
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.utils import timezone

from communication.admin import counted_filters
from communication.selectors import counted_log_dates

register = template.Library()


class _CountedDates:
    """What Django's date hierarchy asks of the changelist's queryset, answered from the counts."""

    def __init__(self, changelist, scope: dict):
        self.changelist, self.scope = changelist, scope

    def _window(self):
        """The selected year or month, as [since, until) in the current time zone."""
        params = self.changelist.params
        field = self.changelist.date_hierarchy
        year, month = params.get(f"{field}__year"), params.get(f"{field}__month")
        if not year:
            return None, None
        # Valid numbers by now: Django refuses other hierarchy parameters before rendering.
        year = int(year)
        if month:
            month = int(month)
            since = datetime(year, month, 1)
            until = datetime(year + month // 12, month % 12 + 1, 1)
        else:
            since, until = datetime(year, 1, 1), datetime(year + 1, 1, 1)
        return timezone.make_aware(since), timezone.make_aware(until)

    def datetimes(self, field_name, kind):
        since, until = self._window()
        return counted_log_dates(kind=kind, since=since, until=until, **self.scope)

    def aggregate(self, **_bounds):
        hours = counted_log_dates(kind="hour", **self.scope)
        return {"first": hours[0] if hours else None, "last": hours[-1] if hours else None}


class _CountedChangeList:
    def __init__(self, changelist, scope: dict):
        self._changelist = changelist
        self.queryset = _CountedDates(changelist, scope)

    def __getattr__(self, name):
        return getattr(self._changelist, name)


def log_date_hierarchy(context, changelist):
    scope = counted_filters(context["request"], only_counted=True)
    scope.pop("status_detail", None)  # the hourly counts have no finer state: its dates are a superset
    return date_hierarchy(_CountedChangeList(changelist, scope))


@register.tag(name="log_date_hierarchy")
def log_date_hierarchy_tag(parser, token):
    return InclusionAdminNode(
        parser, token, func=log_date_hierarchy, template_name="date_hierarchy.html", takes_context=True
    )
