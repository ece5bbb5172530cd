"""The staff console in a real browser: Playwright driving Debian's Chromium against a live
server, with a real Celery worker on the Redis broker. Screenshots of every step go to
test-artifacts/staff-console/."""

import csv

import pytest
from django.core.cache import cache

from communication.models import CommunicationLog
from communication.selectors import delivery_dashboard
from tests.e2e.browser import log_in, shot
from tests.factories import LogFactory


@pytest.fixture
def data(transactional_db, ada, alice, bob):
    cache.clear()
    logs = {
        "failed": LogFactory(
            user=alice, status="failed", error="Outcome unknown: SUBMAIL did not answer in time"
        ),
        "delivered": [LogFactory(user=alice, status="delivered") for _ in range(3)],
        "theirs": LogFactory(user=bob, status="failed", error="Other tenant's failure"),
    }
    yield logs
    cache.clear()


def test_tenant_admin_finds_a_failed_log_and_retries_it(page, data, worker):
    log_in(page)
    shot(page, "01-dashboard")
    page.click("text=Communication logs")
    page.click("#changelist-filter >> text=Failed")
    page.wait_for_url("**status__exact=failed**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and data["theirs"].id not in page.content()
    shot(page, "02-failed-logs")

    page.click(f"text={data['failed'].id}")
    page.wait_for_selector("text=Outcome unknown: SUBMAIL did not answer in time")
    assert page.locator(".status-badge").count() >= 1
    shot(page, "03-failed-log-detail")

    page.go_back()
    page.check(f"input[name=_selected_action][value={data['failed'].id}]")
    page.select_option("select[name=action]", "retry_failed")
    page.click("button[name=index]")
    page.wait_for_selector("text=queued again")
    shot(page, "04-retried")

    def copy_sent():
        return CommunicationLog.objects.filter(retry_of=data["failed"].id, status="sent").exists()

    from tests.e2e.conftest import wait_until

    wait_until(copy_sent, timeout=30)
    page.goto("/admin/communication/communicationlog/?status__exact=sent")
    copy = CommunicationLog.objects.get(retry_of=data["failed"].id)
    assert copy.id in page.content()
    shot(page, "05-retry-sent")


def test_another_tenants_log_cannot_be_reached_by_url(page, data):
    log_in(page)
    page.goto(f"/admin/communication/communicationlog/{data['theirs'].id}/change/")
    page.wait_for_selector("text=doesn’t exist")
    assert "Other tenant's failure" not in page.content()
    shot(page, "06-other-tenant-by-url")
    page.goto(f"/admin/authms/user/{data['theirs'].user_id}/change/")
    page.wait_for_selector("text=doesn’t exist")
    assert page.url.endswith("/admin/")


def test_export_filtered_rows_as_csv(page, data, tmp_path):
    log_in(page)
    page.goto("/admin/communication/communicationlog/?status__exact=delivered")
    with page.expect_download() as download_info:
        page.click("text=Export filtered rows as CSV")
    path = tmp_path / "export.csv"
    download_info.value.save_as(path)
    rows = list(csv.reader(path.open()))
    assert rows[0][0] == "id" and {row[0] for row in rows[1:]} == {log.id for log in data["delivered"]}
    shot(page, "07-export")


def test_dashboard_shows_the_numbers_in_the_database(page, data, ada):
    log_in(page)
    expected = delivery_dashboard(actor=ada)["windows"][0]["lines"][0]
    row = page.locator("#dashboard-24h tr[data-channel=sms][data-provider=console]")
    assert row.locator("td.total").inner_text() == str(expected["total"]) == "4"
    assert row.locator("td.delivered").inner_text() == "3" and row.locator("td.failed").inner_text() == "1"
    assert page.locator("#dashboard-24h svg rect").count() == 2
    shot(page, "08-dashboard")
    # Each figure opens the logs list it counts: the failed one, the one failed log.
    row.locator("td.failed a").click()
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "status__exact=failed" in page.url and "provider=console" in page.url
