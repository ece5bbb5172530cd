"""`__any` answers exactly what `__in` answers, as one array parameter on PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from communication.models import Suppression


@pytest.mark.parametrize(
    "wanted",
    [
        ["+8613800000001", "+8613800000003"],
        ["+8613800000001", None, "+8613800000001"],
        [],
        [None],
        ["nobody"],
    ],
)
def test_any_matches_in(tenant_a, wanted):
    for n in range(4):
        Suppression.objects.create(tenant=tenant_a, channel="sms", recipient=f"+86138000000{n:02d}")
    with CaptureQueriesContext(connection) as queries:
        found = sorted(Suppression.objects.filter(recipient__any=wanted).values_list("recipient", flat=True))
    assert found == sorted(
        Suppression.objects.filter(recipient__in=wanted).values_list("recipient", flat=True)
    )
    if connection.vendor == "postgresql" and any(wanted):
        assert "= ANY(" in queries[0]["sql"]


def test_any_over_a_lowered_annotation(tenant_a, alice):
    from django.db.models.functions import Lower

    from authms.models import User

    User.objects.filter(pk=alice.pk).update(email="Alice@Example.COM")
    found = User.objects.annotate(address=Lower("email")).filter(address__any=["alice@example.com", "x@y.z"])
    assert list(found.values_list("username", flat=True)) == ["alice"]
