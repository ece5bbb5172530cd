"""The delivery dashboard on the admin index: numbers as in the database, per tenant."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
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


def test_the_figures_come_from_the_maintained_counts_not_the_log_table(ada, root, traffic):
    for actor in (ada, root):
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            delivery_dashboard(actor=actor)
        # Counts for every window at once, then the top reasons per window (and the platform
        # admin's per-tenant lines with their names).
        assert len(queries) == (3 if actor is ada else 7)
        assert not [q["sql"] for q in queries if re.search(r'FROM "communication_log"(?!_count)', q["sql"])]


def test_the_platform_admin_gets_a_line_per_tenant_and_a_tenant_admin_none(
    ada, root, traffic, tenant_a, tenant_b
):
    last_day, last_week = delivery_dashboard(actor=root)["windows"]
    tenants = {line["tenant"]: line for line in last_week["tenants"]}
    assert set(tenants) == {"Acme", "Globex"}
    assert (tenants["Acme"]["total"], tenants["Acme"]["failed"], tenants["Acme"]["delivered"]) == (12, 2, 6)
    assert (tenants["Globex"]["total"], tenants["Globex"]["failed"]) == (1, 1)
    assert {line["tenant"]: line["total"] for line in last_day["tenants"]} == {"Acme": 11, "Globex": 1}
    cache.clear()
    assert all("tenants" not in window for window in delivery_dashboard(actor=ada)["windows"])


def test_charts_show_each_hours_delivery_rate_and_mean_latency(ada, alice):
    now = timezone.now()
    two_hours_ago = now - timedelta(hours=2)
    for seconds in (4, 8):  # two delivered, 4 s and 8 s after the provider took them
        LogFactory(
            user=alice, provider="aliyun", status="delivered", created_at=two_hours_ago,
            sent_at=two_hours_ago, delivered_at=two_hours_ago + timedelta(seconds=seconds),
        )  # fmt: skip
    LogFactory(user=alice, provider="aliyun", status="failed", created_at=two_hours_ago)
    LogFactory(user=alice, provider="aliyun", status="pending")  # not finished: not in the rate
    last_day, last_week = delivery_dashboard(actor=ada)["windows"]
    chart = next(chart for chart in last_day["charts"] if chart["provider"] == "aliyun")
    measured = [point for point in chart["points"] if point["rate"] is not None]
    assert len(chart["points"]) == 24 and len(measured) == 1
    assert measured[0]["at"] == two_hours_ago.replace(minute=0, second=0, microsecond=0)
    assert round(measured[0]["rate"], 1) == 66.7 and measured[0]["latency"] == 6.0
    assert chart["latency_top"] == 6.0 and len(chart["rate_lines"]) == 1
    week_chart = next(chart for chart in last_week["charts"] if chart["provider"] == "aliyun")
    assert len(week_chart["points"]) == 28


def test_the_index_draws_the_charts_and_the_tenant_lines(client, root, traffic):
    client.force_login(root)
    html = client.get("/admin/").content.decode()
    assert '<figure class="chart" data-provider="submail">' in html and "<polyline" in html
    assert re.search(r'<tr data-tenant="[^"]+">\s*<td>Globex</td>', html)


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
