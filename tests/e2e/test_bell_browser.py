"""The notification bell demo (/notifications/demo/) in Chromium, served by uvicorn: sign in,
the unseen badge, opening the bell (seen), mark read, archive, and a notification created
through the admin API arriving on the page without a reload within 2 s (Server-Sent Events,
announced through the real Redis)."""

import time
from pathlib import Path

import httpx
import pytest

from notifications import services
from tests.conftest import access_token_for
from tests.e2e.browser import shot

DEMO = "/notifications/demo/"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _notify(user, title):
    services.notify(
        tenant_id=user.tenant_id, user_ids=[user.id], type="system", event_type="demo.bell.test", title=title
    )


@pytest.fixture
def bell_page(browser, asgi_server, alice):
    context = browser.new_context(base_url=asgi_server.url, viewport={"width": 900, "height": 700})
    yield context.new_page()
    context.close()


def _sign_in(page):
    """Alice signs in on the demo; the list is loaded and the stream open."""
    page.goto(DEMO)
    page.fill("#username", "alice")
    page.fill("#password", "pass-word-123")
    page.click("button[type=submit]")
    page.wait_for_selector("#bell:not([hidden])")
    page.wait_for_selector("#live:text('Live')", state="attached")


def test_the_bell_shows_the_badge_clears_it_on_open_and_reads_and_archives(bell_page, alice):
    page = bell_page
    _notify(alice, "Password changed")
    _notify(alice, "Invoice ready")
    _sign_in(page)
    page.wait_for_selector("#badge:text('2')")

    page.click("#bell")  # opening the bell marks what it shows as seen
    page.wait_for_selector("#badge[hidden]", state="attached")
    titles = page.locator("#items li .title").all_text_contents()
    assert titles == ["Invoice ready", "Password changed"]
    assert page.locator("#unread-count").text_content() == "2 unread"

    invoice = page.locator("#items li", has_text="Invoice ready")
    invoice.locator("button[data-action=read]").click()
    page.wait_for_selector("#items li.read:has-text('Invoice ready')")
    page.wait_for_selector("#unread-count:text('1 unread')")  # the stream's new counts

    page.locator("#items li", has_text="Password changed").locator("button[data-action=archive]").click()
    page.wait_for_selector("#items li:has-text('Password changed')", state="detached")
    page.select_option("#status-filter", "archived")
    page.wait_for_selector("#items li:has-text('Password changed')")
    assert page.locator("#unread-count").text_content() == "0 unread"


def test_a_notification_sent_through_the_admin_api_appears_within_two_seconds(
    bell_page, asgi_server, alice, ada
):
    page = bell_page
    _sign_in(page)
    page.click("#bell")
    page.wait_for_selector("#empty:not([hidden])")

    started = time.monotonic()
    answer = httpx.post(
        f"{asgi_server.url}/api/v1/admin/notifications",
        headers={"Authorization": f"Bearer {access_token_for(ada)}"},
        json={"audience": "users", "user_ids": [alice.id], "type": "system", "event_type": "status.incident.created",
              "title": "Incident: SMS delayed", "content": "Our SMS gateway is slow; we are on it."},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    page.wait_for_selector("#items li:has-text('Incident: SMS delayed')", timeout=2000)
    page.wait_for_selector("#badge:text('1')", timeout=2000)
    assert time.monotonic() - started < 2.0
    shot(page, "bell-demo", folder=SCREENSHOTS)
