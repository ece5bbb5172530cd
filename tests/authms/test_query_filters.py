"""authms.query_filters: list filters from query parameters, as a FilterSet read them."""

import pytest
from django import forms
from django.http import QueryDict

from authms.errors import ValidationError
from authms.query_filters import QueryFilter, QueryFilters
from communication.models import CommunicationLog
from tests.factories import LogFactory

FILTERS = QueryFilters(
    channel=QueryFilter(
        "channel", forms.ChoiceField(choices=[("sms", "sms"), ("email", "email")], required=False)
    ),
    batch_id=QueryFilter("batch_id", forms.CharField(required=False, strip=False)),
    attempts=QueryFilter("attempts__gte", forms.IntegerField(required=False)),
)


def filtered(queryset, params):
    return queryset.filter(**FILTERS.lookups(params))


def ids(queryset) -> set:
    return set(queryset.values_list("id", flat=True))


@pytest.fixture
def logs(alice):
    return {
        "sms": LogFactory(user=alice, channel="sms", batch_id="bat_1"),
        "email": LogFactory(user=alice, channel="email", batch_id="bat_2"),
    }


def test_each_given_parameter_narrows_the_queryset(logs):
    everything = CommunicationLog.objects.all()
    assert ids(filtered(everything, QueryDict("channel=email"))) == {logs["email"].id}
    assert ids(filtered(everything, QueryDict("channel=sms&batch_id=bat_2"))) == set()
    assert ids(filtered(everything, QueryDict("unknown=1"))) == ids(everything)


def test_a_repeated_parameter_counts_by_its_last_value(logs):
    narrowed = filtered(CommunicationLog.objects.all(), QueryDict("channel=email&channel=sms"))
    assert ids(narrowed) == {logs["sms"].id}


def test_an_empty_value_is_no_filter_and_text_is_compared_unstripped(logs):
    everything = CommunicationLog.objects.all()
    assert ids(filtered(everything, QueryDict("channel=&batch_id="))) == ids(everything)
    assert ids(filtered(everything, QueryDict("batch_id=%20bat_1"))) == set()


def test_every_refused_parameter_is_named_in_declaration_order(db):
    with pytest.raises(ValidationError) as refused:
        filtered(CommunicationLog.objects.all(), QueryDict("attempts=many&channel=fax"))
    assert list(refused.value.errors) == ["channel", "attempts"]
    assert (
        refused.value.message
        == "Select a valid choice. fax is not one of the available choices. Enter a whole number."
    )
