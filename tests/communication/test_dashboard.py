"""The delivery dashboard on the admin index: numbers as in the database, per tenant."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from communication.selectors import delivery_dashboard
from tests.factories import LogFactory


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def traffic(alice, bob):
    now = timezone.now()
    for status, count in (("delivered", 6), ("sent", 2), ("failed", 1), ("pending", 1)):
        for _ in range(count):
            LogFactory(
                user=alice,
                provider="submail",
                status=status,
                error="Not delivered: 空号" if status == "failed" else None,
            )
    LogFactory(
        user=alice,
        provider="submail",
        status="failed",
        error="Old failure",
        created_at=now - timedelta(days=3),
    )
    LogFactory(user=alice, channel="email", provider="smtp", status="sent")
    LogFactory(user=bob, provider="submail", status="failed", error="Other tenant")


def _line(window, channel, provider):
    return next(
        line for line in window["lines"] if (line["channel"], line["provider"]) == (channel, provider)
    )


def test_counts_and_rates_per_channel_and_provider(ada, traffic):
    last_day, last_week = delivery_dashboard(actor=ada)["windows"]
    sms = _line(last_day, "sms", "submail")
    assert (sms["total"], sms["delivered"], sms["sent"], sms["failed"], sms["pending"]) == (10, 6, 2, 1, 1)
    assert sms["delivery_rate"] == round(100 * 6 / 9, 1) and sms["accepted_rate"] == round(100 * 8 / 9, 1)
    assert _line(last_week, "sms", "submail")["failed"] == 2  # the three-day-old failure counts in 7d only
    assert _line(last_day, "email", "smtp")["sent"] == 1
    assert [r["error"] for r in last_week["top_failures"]] == ["Not delivered: 空号", "Old failure"]


def test_tenant_admin_sees_only_their_tenant_platform_admin_sees_all(ada, root, traffic):
    reasons = {r["error"] for r in delivery_dashboard(actor=ada)["windows"][1]["top_failures"]}
    assert "Other tenant" not in reasons
    cache.clear()
    reasons = {r["error"] for r in delivery_dashboard(actor=root)["windows"][1]["top_failures"]}
    assert "Other tenant" in reasons


def test_the_admin_index_renders_the_dashboard_with_the_same_numbers(client, ada, traffic):
    client.force_login(ada)
    html = client.get("/admin/").content.decode()
    assert 'id="delivery-dashboard"' in html and "<svg" in html
    assert re.search(r'<td class="num total"><a href="[^"]+">10</a></td>', html)
    assert re.search(r'<td class="num delivered"><a href="[^"]+">6</a></td>', html)
    assert "Not delivered: 空号" in html and "cdn" not in html.lower()


def test_results_are_cached_for_a_minute(ada, traffic, django_assert_num_queries):
    delivery_dashboard(actor=ada)
    with django_assert_num_queries(0):
        delivery_dashboard(actor=ada)


def test_both_windows_come_from_one_aggregate_scan(ada, traffic, django_assert_num_queries):
    with django_assert_num_queries(3):  # counts for every window, then the top reasons per window
        delivery_dashboard(actor=ada)


def test_the_panels_css_is_scoped_to_them_not_the_index_body(client, ada, traffic):
    client.force_login(ada)
    page = client.get("/admin/").content.decode()
    style = page.split("<style>")[1].split("</style>")[0]
    rules = [line.strip() for line in style.splitlines() if "{" in line]
    # The index <body> has the class "dashboard": no rule may start from that class alone.
    assert all(rule.startswith(("div.authms-panel", "body.dashboard #content", "/*")) for rule in rules), (
        rules
    )
    assert 'class="authms-panel module" id="delivery-dashboard"' in page
