"""Quiet hours: non-critical messages falling inside a recipient's window wait until it ends,
read in the user's time zone, else their device's, else the tenant's. The clock is controlled:
CLOCK_START is 08:00 UTC = 16:00 in Shanghai = 03:00 in New York."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from authms.local_time import QuietHours
from communication.models import CommunicationLog, Device
from communication.services import dispatch_pending
from templates.models import Template
from tests.communication.conftest import CLOCK_START as NOW
from tests.factories import UserFactory

URL = "/api/v1/communication/bulk"
SHANGHAI, NEW_YORK = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")


def bulk(client, recipients, channel="sms", **fields):
    return client.post(
        URL, {"channel": channel, "content": "News", "recipients": recipients, **fields}, format="json"
    )


def held(recipient):
    log = CommunicationLog.objects.get(recipient=recipient)
    return log.status_detail, log.next_attempt_at


@pytest.fixture
def quiet_tenant(tenant_a):
    """Quiet 15:00-18:00 in Shanghai, so CLOCK_START (16:00 there) is inside."""
    tenant_a.time_zone, tenant_a.quiet_hours = "Asia/Shanghai", "15:00-18:00"
    tenant_a.save()
    return tenant_a


def test_a_message_inside_the_tenants_window_waits_until_it_ends(client_for, ada, quiet_tenant, clock):
    response = bulk(client_for(ada), ["13800138001"])
    assert response.status_code == 200
    assert response.json()["items"][0]["status_detail"] == "quiet_hours"
    assert held("+8613800138001") == ("quiet_hours", datetime(2026, 12, 1, 18, 0, tzinfo=SHANGHAI))


def test_outside_the_window_nothing_waits(client_for, ada, quiet_tenant, clock):
    clock["now"] = NOW + timedelta(hours=3)  # 19:00 in Shanghai
    bulk(client_for(ada), ["13800138001"])
    assert held("+8613800138001") == ("queued", None)


def test_a_user_in_another_zone_is_not_held_when_it_is_day_there(client_for, ada, quiet_tenant, clock):
    """The tenant's window is read in each user's own time zone."""
    UserFactory(username="ny", tenant=quiet_tenant, phone="+8613800138002", time_zone="America/New_York")
    bulk(client_for(ada), ["13800138001", "13800138002"])
    assert held("+8613800138001")[0] == "quiet_hours"  # nobody's number: the tenant's zone
    assert held("+8613800138002") == ("queued", None)  # 03:00 in New York is outside 15:00-18:00


def test_a_users_own_window_and_off_override_the_tenants(client_for, ada, quiet_tenant, clock):
    UserFactory(username="owl", tenant=quiet_tenant, phone="+8613800138002", quiet_hours="off")
    UserFactory(username="lark", tenant=quiet_tenant, phone="+8613800138003", time_zone="America/New_York",
                quiet_hours="22:00-07:00")  # fmt: skip
    bulk(client_for(ada), ["13800138001", "13800138002", "13800138003"])
    assert held("+8613800138001")[0] == "quiet_hours"
    assert held("+8613800138002") == ("queued", None)
    assert held("+8613800138003") == ("quiet_hours", datetime(2026, 12, 1, 7, 0, tzinfo=NEW_YORK))


def test_a_user_may_keep_quiet_hours_when_the_tenant_has_none(client_for, ada, alice, clock):
    alice.phone = "13800138001"
    alice.save()
    client_for(alice).put("/api/v1/preferences", {"time_zone": "Asia/Shanghai", "quiet_hours": "12:00-17:30"},
                          format="json")  # fmt: skip
    bulk(client_for(ada), ["13800138001", "13800138002"])
    assert held("+8613800138001") == ("quiet_hours", datetime(2026, 12, 1, 17, 30, tzinfo=SHANGHAI))
    assert held("+8613800138002") == ("queued", None)


def test_push_uses_the_devices_zone_when_the_user_has_none(client_for, ada, alice, quiet_tenant, clock):
    UserFactory(username="pia", tenant=quiet_tenant)
    for user, zone in ((alice, "America/New_York"), (quiet_tenant.users.get(username="pia"), "")):
        Device.objects.create(tenant=quiet_tenant, user=user, platform="android", provider="fcm",
                              token=f"tok-{user.username}", time_zone=zone)  # fmt: skip
    response = bulk(client_for(ada), [alice.id, quiet_tenant.users.get(username="pia").id], channel="push",
                    subject="Hi")  # fmt: skip
    assert response.status_code == 200, response.json()
    by_device = {log.recipient: log.status_detail for log in CommunicationLog.objects.all()}
    alice_device = Device.objects.get(user=alice).id
    assert by_device.pop(alice_device) == "queued"  # 03:00 in New York
    assert list(by_device.values()) == ["quiet_hours"]  # the tenant's zone


def test_critical_templates_pass_quiet_hours(client_for, ada, quiet_tenant, clock):
    Template.objects.create(tenant=quiet_tenant, code="otp", channel="sms", name="OTP", body="Code {{code}}",
                            category="security", sensitive=True)  # fmt: skip
    client_for(ada).post(URL, {"channel": "sms", "template": "otp", "variables": {"code": "42"},
                               "recipients": ["13800138001"]}, format="json")  # fmt: skip
    assert held("+8613800138001") == ("queued", None)


def test_a_scheduled_bulk_is_judged_at_its_send_at(client_for, ada, quiet_tenant, clock):
    bulk(client_for(ada), ["13800138001"], send_at="2026-12-01T20:00:00+08:00")  # after the window
    bulk(client_for(ada), ["13800138002"], send_at="2026-12-02T17:00:00+08:00")  # inside the next day's
    assert held("+8613800138001") == ("scheduled", datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    assert held("+8613800138002") == ("quiet_hours", datetime(2026, 12, 2, 18, 0, tzinfo=SHANGHAI))


def test_a_held_message_goes_out_when_the_window_ends(
    client_for, ada, quiet_tenant, clock, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        bulk(client_for(ada), ["13800138001"])
    assert not recording_provider.received
    log = CommunicationLog.objects.get()
    clock["now"] = log.next_attempt_at - timedelta(seconds=1)
    dispatch_pending(batch_id=log.batch_id)
    assert not recording_provider.received
    clock["now"] = log.next_attempt_at
    dispatch_pending(batch_id=log.batch_id)
    assert len(recording_provider.received) == 1
    assert CommunicationLog.objects.get().status == "sent"


def test_held_messages_can_be_cancelled(client_for, ada, quiet_tenant, clock):
    batch_id = bulk(client_for(ada), ["13800138001"]).json()["batch_id"]
    answer = client_for(ada).post(f"/api/v1/communication/batches/{batch_id}/cancel")
    assert answer.json()["data"] == {"cancelled": 1, "already_left": 0}


# --- The window itself ------------------------------------------------------------------------


def at(zone, day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


@pytest.mark.parametrize(
    ("window", "moment", "until"),
    [
        (QuietHours(time(21), time(8)), at(SHANGHAI, date(2026, 12, 1), 22, 30), at(SHANGHAI, date(2026, 12, 2), 8)),
        (QuietHours(time(21), time(8)), at(SHANGHAI, date(2026, 12, 2), 7, 59), at(SHANGHAI, date(2026, 12, 2), 8)),
        (QuietHours(time(21), time(8)), at(SHANGHAI, date(2026, 12, 2), 8), None),
        (QuietHours(time(21), time(8)), at(SHANGHAI, date(2026, 12, 2), 20, 59), None),
        (QuietHours(time(21), time(8)), at(SHANGHAI, date(2026, 12, 2), 21), at(SHANGHAI, date(2026, 12, 3), 8)),
        (QuietHours(time(12), time(14)), at(SHANGHAI, date(2026, 12, 2), 13), at(SHANGHAI, date(2026, 12, 2), 14)),
        (QuietHours(time(12), time(14)), at(SHANGHAI, date(2026, 12, 2), 14), None),
        # The night clocks go back in New York (1 Nov 2026): 8 hours of wall clock, 9 of real time.
        (QuietHours(time(0), time(8)), at(NEW_YORK, date(2026, 11, 1), 0, 30), at(NEW_YORK, date(2026, 11, 1), 8)),
    ],
)  # fmt: skip
def test_deferred_until_the_end_of_the_window(window, moment, until):
    assert window.deferred_until(moment.astimezone(UTC), moment.tzinfo) == until
    if until is not None:
        assert until.astimezone(UTC) > moment.astimezone(UTC)
