"""Sending caps per tenant and channel: a bulk that would pass the day's or the month's cap is
refused whole (429, remaining allowance in the body, nothing written), usage is exact, and two
bulks racing for the last of an allowance cannot both pass (real threads on PostgreSQL)."""

import threading
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from communication.models import Batch, CommunicationLog, SendUsage
from tests.conftest import access_token_for

URL = "/api/v1/communication/bulk"


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+86139{n:08d}" for n in range(start, start + count)]


def bulk(client, recipients, channel="sms"):
    return client.post(URL, {"channel": channel, "content": "Hi", "recipients": recipients}, format="json")


@pytest.fixture
def capped(tenant_a):
    tenant_a.send_caps = {"sms": {"day": 10, "month": 25}}
    tenant_a.save()
    return tenant_a


def test_a_bulk_over_the_days_cap_is_refused_whole_with_what_remains(client_for, alice, capped):
    client = client_for(alice)
    assert bulk(client, numbers(7)).status_code == 200
    refused = bulk(client, numbers(4, start=100))
    assert refused.status_code == 429, refused.json()
    body = refused.json()
    assert body["data"]["remaining"] == {"day": 3, "month": 18} and body["data"]["requested"] == 4
    assert "day cap of 10" in body["message"] and "3 remain" in body["message"]
    assert CommunicationLog.objects.count() == 7 and Batch.objects.count() == 1  # nothing of the 4
    assert bulk(client, numbers(3, start=200)).status_code == 200  # exactly what remained
    assert bulk(client, numbers(1, start=300)).status_code == 429


def test_invalid_and_suppressed_recipients_do_not_count_and_other_channels_are_free(
    client_for, alice, capped
):
    client = client_for(alice)
    assert bulk(client, [*numbers(10), "not a number", "123"]).status_code == 200
    assert (
        bulk(client, ["ann@example.com"], channel="email").status_code == 400
    )  # needs a subject: not the cap
    email = client.post(URL, {"channel": "email", "subject": "Hi", "content": "Hi",
                              "recipients": [f"u{n}@example.com" for n in range(30)]}, format="json")  # fmt: skip
    assert email.status_code == 200
    assert SendUsage.objects.get(channel="sms", period="day").used == 10


def test_the_month_cap_holds_across_days(client_for, alice, capped, monkeypatch):
    client = client_for(alice)
    for day, count, expected in ((1, 10, 200), (2, 10, 200), (3, 6, 429), (3, 5, 200)):
        monkeypatch.setattr(timezone, "now", lambda day=day: datetime(2026, 12, day, 12, tzinfo=UTC))
        assert bulk(client, numbers(count, start=day * 1000)).status_code == expected
    response = client_for_admin(alice.tenant).get("/api/v1/admin/usage")
    month = next(
        line for line in response.json()["data"] if line["channel"] == "sms" and line["period"] == "month"
    )
    assert (month["cap"], month["used"], month["remaining"]) == (25, 25, 0)


def client_for_admin(tenant):
    from authms.roles import make_tenant_admin
    from tests.factories import UserFactory

    admin = UserFactory(username=f"{tenant.slug}-usage-admin", tenant=tenant, is_staff=True)
    make_tenant_admin(admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(admin)}")
    return client


def test_usage_api_for_tenant_admins_only_and_their_tenant(client_for, alice, ada, bob, root, capped):
    bulk(client_for(alice), numbers(4))
    lines = client_for(ada).get("/api/v1/admin/usage").json()["data"]
    sms_day = next(line for line in lines if (line["channel"], line["period"]) == ("sms", "day"))
    assert (sms_day["cap"], sms_day["used"], sms_day["remaining"]) == (10, 4, 6)
    email_day = next(line for line in lines if (line["channel"], line["period"]) == ("email", "day"))
    assert (email_day["cap"], email_day["remaining"]) == (None, None)  # no cap
    assert client_for(alice).get("/api/v1/admin/usage").status_code == 403
    assert client_for(ada).get("/api/v1/admin/usage", {"tenant_id": bob.tenant_id}).status_code == 404
    theirs = client_for(root).get("/api/v1/admin/usage", {"tenant_id": bob.tenant_id}).json()["data"]
    assert all(line["used"] == 0 for line in theirs)


@pytest.mark.parametrize(
    "caps",
    [
        {"sms": {"day": -1}},
        {"sms": {"week": 5}},
        {"fax": {"day": 5}},
        {"sms": {"day": "10"}},
        {"sms": 10},
        [1],
    ],
)
def test_caps_must_be_counts_of_zero_or_more(tenant_a, caps):
    tenant_a.send_caps = caps
    with pytest.raises(ValidationError):
        tenant_a.full_clean()


def test_the_deployment_default_applies_where_the_tenant_sets_none(client_for, alice, settings):
    settings.SEND_CAPS = {**settings.SEND_CAPS, "sms": {"day": 2, "month": 0}}
    assert bulk(client_for(alice), numbers(3)).status_code == 429
    assert bulk(client_for(alice), numbers(2)).status_code == 200


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_two_bulks_racing_for_the_last_of_the_allowance_cannot_both_pass(tenant_a, settings):
    from tests.factories import UserFactory

    settings.BULK_CONCURRENCY = settings.BULK_CONCURRENCY_PER_PROCESS = 6  # all six at once
    tenant_a.send_caps = {"sms": {"day": 100}}
    tenant_a.save()
    users = [UserFactory(tenant=tenant_a) for _ in range(6)]
    barrier, answers = threading.Barrier(len(users)), []

    def send(user, n):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
        barrier.wait()
        try:
            answers.append(bulk(client, numbers(40, start=n * 1000)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(user, n)) for n, user in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 200, 429, 429, 429, 429]  # 2 × 40 fit in 100; a third would not
    assert CommunicationLog.objects.count() == 80 and SendUsage.objects.get(period="day").used == 80


def test_admins_get_one_notice_at_80_and_one_at_100_percent_per_period(
    client_for, alice, ada, capped, django_capture_on_commit_callbacks
):
    from notifications.models import Notification

    client = client_for(alice)
    for count, start in ((7, 0), (1, 100), (1, 200), (1, 300)):  # 70 %, 80 %, 90 %, 100 % of the day's 10
        with django_capture_on_commit_callbacks(execute=True):
            assert bulk(client, numbers(count, start=start)).status_code == 200
    notices = Notification.objects.filter(event_type="communication.cap.reached").order_by("created_at", "id")
    assert [(n.user_id, n.title) for n in notices] == [
        (ada.id, "SMS day cap: 80% used (8 of 10)"),
        (ada.id, "SMS day cap: 100% used (10 of 10)"),
    ]  # the month's 25 is at 40 %: no notice; alice is not an admin
    assert notices[1].priority == "high" and "refused until the day ends" in notices[1].content
