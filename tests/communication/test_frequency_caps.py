"""Per-recipient frequency caps, checked for the whole bulk before any gateway call: a message
over a cap gets a failed log saying so, the rest of the bulk goes on; the clock is controlled."""

from datetime import timedelta

import pytest

from communication.models import CommunicationLog
from templates.models import Template
from tests.communication.conftest import CLOCK_START as NOW
from tests.factories import LogFactory

URL = "/api/v1/communication/bulk"


@pytest.fixture
def otp(tenant_a):
    return Template.objects.create(tenant=tenant_a, code="otp", channel="sms", name="Code", body="Code {{code}}",
                                   sensitive=True)  # fmt: skip


def send_code(client, *numbers):
    return client.post(URL, {"channel": "sms", "template": "otp", "variables": {"code": "123456"},
                             "recipients": list(numbers)}, format="json").json()["items"]  # fmt: skip


def outcome(item):
    return item["status"], item["status_detail"]


def test_codes_one_a_minute_five_an_hour_per_number(client_for, alice, otp, clock):
    client = client_for(alice)
    assert outcome(send_code(client, "13800138000")[0]) == ("pending", "queued")
    capped, other = send_code(client, "13800138000", "13900139000")
    assert (
        outcome(capped) == ("failed", "frequency_capped") and "1 code message per minute" in capped["error"]
    )
    assert outcome(other) == ("pending", "queued")  # the rest of the bulk goes on
    for minute in range(1, 5):
        clock["now"] = NOW + timedelta(minutes=minute)
        assert outcome(send_code(client, "13800138000")[0]) == ("pending", "queued")
    clock["now"] = NOW + timedelta(minutes=5)
    [sixth] = send_code(client, "13800138000")
    assert outcome(sixth)[1] == "frequency_capped" and "5 code messages per hour" in sixth["error"]
    clock["now"] = NOW + timedelta(minutes=61)  # the first has left the hour
    assert outcome(send_code(client, "13800138000")[0]) == ("pending", "queued")
    queued = CommunicationLog.objects.filter(recipient="+8613800138000", status="pending")
    assert (
        queued.count() == 6 and CommunicationLog.objects.filter(status_detail="frequency_capped").count() == 2
    )


def test_notices_fifty_a_day_counting_only_this_tenant_channel_and_class(client_for, alice, bob, otp, clock):
    for _ in range(49):
        LogFactory(user=alice, recipient="+8613800138000", status="sent", created_at=NOW - timedelta(hours=3))
    for status_detail in ("invalid", "cancelled", "frequency_capped"):  # never sent: not counted
        LogFactory(user=alice, recipient="+8613800138000", status="failed", status_detail=status_detail)
    LogFactory(user=bob, recipient="+8613800138000", status="sent")  # another tenant's
    LogFactory(user=alice, recipient="+8613800138000", status="sent", template=otp)  # another class
    body = {"channel": "sms", "content": "Your parcel", "recipients": ["13800138000"]}
    assert outcome(client_for(alice).post(URL, body, format="json").json()["items"][0]) == (
        "pending",
        "queued",
    )
    [capped] = client_for(alice).post(URL, body, format="json").json()["items"]
    assert (
        outcome(capped) == ("failed", "frequency_capped") and "50 notice messages per day" in capped["error"]
    )
    assert outcome(client_for(bob).post(URL, body, format="json").json()["items"][0]) == ("pending", "queued")
    clock["now"] = NOW + timedelta(days=1)  # yesterday's have left the window
    assert outcome(client_for(alice).post(URL, body, format="json").json()["items"][0]) == (
        "pending",
        "queued",
    )


def test_frequency_caps_can_be_turned_off(client_for, alice, otp, clock, settings):
    settings.FREQUENCY_CAPS = {}
    client = client_for(alice)
    assert [outcome(send_code(client, "13800138000")[0]) for _ in range(3)] == [("pending", "queued")] * 3
    assert CommunicationLog.objects.filter(status_detail="frequency_capped").count() == 0
