"""Spend caps: a bulk's estimated cost (the price table per provider × country) is checked with
the tenant's day and month spend caps; one that would pass is refused whole (429)."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from communication.models import CommunicationLog, Price, SendUsage
from communication.services.pricing import number_country

URL = "/api/v1/communication/bulk"


def bulk(client, recipients):
    return client.post(URL, {"channel": "sms", "content": "Hi", "recipients": recipients}, format="json")


def china(count, start=0):
    return [f"+86139{n:08d}" for n in range(start, start + count)]


@pytest.fixture
def priced(tenant_a, recording_provider):
    Price.objects.create(provider="recording", channel="sms", country="CN", unit_price=Decimal("0.0450"))
    Price.objects.create(provider="recording", channel="sms", country="*", unit_price=Decimal("0.5000"))
    Price.objects.create(provider="other", channel="sms", country="CN", unit_price=Decimal("9"))
    tenant_a.send_caps = {"spend": {"day": 1.5}}
    tenant_a.save()
    return tenant_a


def test_a_bulk_whose_estimate_would_pass_the_cap_is_refused_whole(client_for, ada, priced):
    client = client_for(ada)
    assert bulk(client, china(20)).status_code == 200  # 20 × 0.045 = 0.90
    refused = bulk(client, [*china(10, start=100), "+442071234567"])  # 0.45 + 0.50 (no GB price: "*")
    assert refused.status_code == 429, refused.json()
    body = refused.json()
    assert "estimated cost of 0.9500 CNY" in body["message"] and "0.6000 CNY remain" in body["message"]
    assert body["data"]["estimated_cost"] == 0.95 and body["data"]["remaining"] == {"day": 0.6}
    assert CommunicationLog.objects.count() == 20
    assert bulk(client, china(13, start=200)).status_code == 200  # 0.585 fits in 0.60
    assert SendUsage.objects.get(channel="spend", period="day").used == 14850  # 1.4850 CNY


def test_refused_and_failed_recipients_cost_nothing(client_for, ada, priced):
    assert bulk(client_for(ada), ["not-a-number"] * 40 + china(1)).status_code == 200
    assert SendUsage.objects.get(channel="spend", period="day").used == 450


def test_without_a_spend_cap_nothing_is_priced(client_for, ada, tenant_a, recording_provider):
    Price.objects.create(provider="recording", channel="sms", country="CN", unit_price=Decimal("100"))
    assert bulk(client_for(ada), china(5)).status_code == 200
    assert not SendUsage.objects.filter(channel="spend").exists()


def test_usage_shows_spend_in_money(client_for, ada, priced):
    bulk(client_for(ada), china(3))
    lines = client_for(ada).get("/api/v1/admin/usage").json()["data"]
    spend = next(line for line in lines if line["channel"] == "spend" and line["period"] == "day")
    assert (
        spend["unit"] == "CNY"
        and spend["cap"] == 1.5
        and spend["used"] == 0.135
        and spend["remaining"] == 1.365
    )
    sms = next(line for line in lines if line["channel"] == "sms" and line["period"] == "day")
    assert sms["unit"] == "messages" and sms["cap"] is None and sms["remaining"] is None


@pytest.mark.parametrize(
    ("number", "country"),
    [("+8613800138000", "CN"), ("+12125550123", "US"), ("+14165550123", "CA"), ("+442071234567", "GB"),
     ("+85291234567", "HK"), ("+77012345678", "KZ")],
)  # fmt: skip
def test_the_country_of_a_number(number, country):
    assert number_country(number) == country


@pytest.mark.parametrize("caps", [{"spend": {"day": -1}}, {"spend": {"day": "5"}}, {"sms": {"day": 1.5}}])
def test_spend_caps_are_amounts_of_zero_or_more(tenant_a, caps):
    tenant_a.send_caps = caps
    with pytest.raises(ValidationError):
        tenant_a.full_clean()


def test_prices_cannot_be_negative(db):
    with pytest.raises(ValidationError):
        Price(provider="x", channel="sms", country="CN", unit_price=Decimal("-1")).full_clean()


def test_tenant_admins_hear_at_80_percent_of_the_spend_cap(
    client_for, ada, priced, django_capture_on_commit_callbacks
):
    from notifications.models import Notification

    with django_capture_on_commit_callbacks(execute=True):
        bulk(client_for(ada), china(20))  # 0.90 of 1.50: 60 %
    alerts = Notification.objects.filter(event_type="communication.cap.reached")
    assert not alerts.exists()
    with django_capture_on_commit_callbacks(execute=True):
        bulk(client_for(ada), china(7, start=100))  # 1.215: 81 %
    notice = alerts.get(user=ada)
    assert notice.title == "SPEND day cap: 80% used (1.2150 CNY of 1.5000 CNY)"
    assert notice.content == "0.2850 CNY remain this day."
