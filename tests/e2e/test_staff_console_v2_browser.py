"""Staff console v2 in Chromium, as a tenant admin (ada, Acme) and as the platform admin
(root): every defect fixed and every feature of the console, each search and filter with
rows of the same tenant that must not match. Screenshots of the list, a detail page and the
dashboard at desktop and phone size go to docs/screenshots/ (linked from the README)."""

import re
from pathlib import Path

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.core.cache import cache

from communication.models import CommunicationLog
from tests.e2e.browser import log_in, shot
from tests.factories import LogFactory, UserFactory

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LOGS = "/admin/communication/communicationlog/"
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture
def console(transactional_db, ada, alice, root, bob):
    """Acme's logs (ada sees them) and Globex's (only root sees them), each a near miss for another."""
    cache.clear()
    acme_admin = UserFactory(username="acme-ops", tenant=alice.tenant, is_staff=True)
    logs = {
        "failed": LogFactory(
            user=alice, status="failed", recipient="+8613800138000", provider="console", batch_id="bat_acme1",
            provider_message_id="pm-acme-1", error="Outcome unknown: the gateway did not answer in time",
        ),
        "other_number": LogFactory(user=alice, status="delivered", recipient="+8613900139000", provider="console"),
        "ann": LogFactory(
            user=alice, channel="email", provider="smtp", status="delivered", recipient="ann@example.com",
            subject="Your order",
        ),
        "anne": LogFactory(
            user=alice, channel="email", provider="smtp", status="failed", recipient="anne@example.org",
            error="Mailbox does not exist",
        ),
        "push": LogFactory(user=alice, channel="push", provider="", status="failed", recipient="device-1"),
        "globex": LogFactory(
            user=bob, status="failed", recipient="+8613800138000", provider="aliyun", batch_id="bat_globex1",
            error="Globex failure",
        ),
    }  # fmt: skip
    yield {"logs": logs, "acme_admin": acme_admin}
    cache.clear()


PERSONAS = ["ada", "root"]


def rows(page) -> list[str]:
    return page.locator("#result_list tbody tr").all_inner_texts()


def search(page, term: str) -> list[str]:
    page.fill("#searchbar", term)
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    return rows(page)


def follow(page, selector: str):
    with page.expect_navigation():
        page.click(selector)


def retry_failed_sms_and_email(page, console, settings) -> str:
    """As ada, the list's retry action on Acme's failed SMS and failed email, in a deployment
    that sends no email (no provider for the channel); the messages shown."""
    settings.CHANNEL_PROVIDERS = {"sms": "console"}
    log_in(page, "ada")
    page.goto(f"{LOGS}?status__exact=failed")
    for log in (console["logs"]["failed"], console["logs"]["anne"]):
        page.check(f"input[name=_selected_action][value={log.id}]")
    page.select_option("select[name=action]", "retry_failed")
    follow(page, "button[name=index]")
    return page.locator("ul.messagelist").inner_text()


# --- Defects -----------------------------------------------------------------------------------


def test_1_retry_skips_a_log_whose_channel_has_no_provider_with_a_reason(page, console, settings):
    messages = retry_failed_sms_and_email(page, console, settings)
    assert (
        "1 log queued again" in messages
        and "1 skipped: no provider is configured for its channel" in messages
    )
    assert "Server Error" not in page.content()
    assert CommunicationLog.objects.filter(retry_of=console["logs"]["failed"].id).count() == 1
    assert not CommunicationLog.objects.filter(retry_of=console["logs"]["anne"].id).exists()


@pytest.mark.parametrize("persona", PERSONAS)
def test_2_the_provider_filter_lists_only_the_providers_a_staff_member_may_see(page, console, persona):
    log_in(page, persona)
    page.goto(LOGS)
    choices = page.locator("#changelist-filter details[data-filter-title=provider] a").all_inner_texts()
    assert {"console", "smtp"} <= set(choices)
    assert ("aliyun" in choices) is (persona == "root")
    follow(page, "#changelist-filter details[data-filter-title=provider] >> text=console")
    assert len(rows(page)) == 2  # Acme's two console SMS; not the smtp emails


def test_3_export_with_a_filter_the_list_does_not_have_is_refused_not_a_500(page, console):
    log_in(page, "ada")
    response = page.goto(f"{LOGS}?bogus=1&export=csv")
    assert response.status == 200 and "e=1" in page.url and "Server Error" not in page.content()


def test_4_messages_are_in_the_staff_language_with_plural_forms(browser, live_server, console, settings):
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", extra_http_headers={"Accept-Language": "zh-hans"}
    )
    page = context.new_page()
    messages = retry_failed_sms_and_email(page, console, settings)
    assert re.search(r"已将 1 条日志重新排队，批次：bat_\w+。", messages), messages
    assert "skipped" not in messages and "跳过" in messages
    context.close()


def test_5_the_dashboards_style_stays_on_the_dashboard(page, console):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, "ada")
    toggle = page.locator("button.theme-toggle").first.bounding_box()
    assert toggle["height"] < 40  # the theme icons side by side, not stacked
    min_width = page.evaluate("getComputedStyle(document.querySelector('#container')).minWidth")
    assert min_width in ("0px", "auto"), min_width


def test_6_view_site_favicon_and_a_server_error_page_with_its_request_id(page, console, monkeypatch):
    log_in(page, "ada")
    favicon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(favicon).status == 200
    view_site = page.locator("#user-tools a:has-text('View site')").get_attribute("href")
    assert page.goto(view_site).status == 200

    def broken(**_dimensions):
        raise RuntimeError("a fault in the console")

    monkeypatch.setattr("communication.admin.counted_log_total", broken)
    response = page.goto(LOGS)
    assert response.status == 500
    assert page.locator("#request-id").inner_text() == response.headers["x-request-id"] != ""
    assert page.locator("a:has-text('Back to the staff console')").count() == 1


@pytest.mark.parametrize("persona", PERSONAS)
def test_7_records_cannot_be_deleted_by_anyone(page, console, persona):
    log_in(page, persona)
    page.goto(LOGS)
    actions = page.locator("select[name=action] option").all_inner_texts()
    assert not [action for action in actions if "Delete" in action], actions
    page.goto(f"{LOGS}{console['logs']['failed'].id}/change/")
    assert page.locator("a.deletelink").count() == 0
    assert page.request.get(f"{LOGS}{console['logs']['failed'].id}/delete/").status == 403


# --- Working on the console --------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_8_the_list_shows_what_support_looks_for_first(page, console, persona):
    log_in(page, persona)
    page.goto(f"{LOGS}?status__exact=failed&channel__exact=sms")
    headers = [
        h.strip().lower()
        for h in page.locator("#result_list thead th div.text").all_inner_texts()
        if h.strip()
    ]
    expected = ["created at", "recipient", "user", *(["tenant"] if persona == "root" else []), "channel"]
    assert headers[: len(expected)] == expected and headers[-1] == "id"
    row = page.locator(f"#result_list tbody tr:has-text('{console['logs']['failed'].id}')")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row.inner_text())
    assert row.locator(".status-badge").inner_text().strip() == "Failed"
    assert "Outcome unknown: the gateway did not answer in time" in row.inner_text()
    assert row.locator("td.field-masked_recipient").inner_text().strip() != "+8613800138000"  # masked
    assert len(rows(page)) == (2 if persona == "root" else 1)  # Globex's failed SMS for root only


@pytest.mark.parametrize("persona", PERSONAS)
def test_9_search_finds_what_staff_type_and_not_its_neighbours(page, console, persona):
    logs = console["logs"]
    log_in(page, persona)
    page.goto(LOGS)
    theirs = 1 if persona == "root" else 0
    for typed in ("13800138000", "138 0013 8000", "+86 138 0013 8000"):
        found = search(page, typed)
        assert len(found) == 1 + theirs, (typed, found)  # not Acme's +86 139 number
        assert logs["failed"].id in page.content() and logs["other_number"].id not in page.content()
    assert len(search(page, "ann@exam")) == 1 and logs["anne"].id not in page.content()
    assert len(search(page, "ann@example.com")) == 1
    assert len(search(page, "bat_acme1")) == 1 and logs["failed"].id in page.content()
    assert len(search(page, "pm-acme-1")) == 1
    assert len(search(page, "bat_globex1")) == theirs


def test_10_the_detail_page_is_grouped_links_its_batch_and_retries_with_a_button(page, console, ada):
    failed = console["logs"]["failed"]
    log_in(page, "ada")
    page.goto(f"{LOGS}{failed.id}/change/")
    headings = page.locator("fieldset h2, fieldset summary").all_inner_texts()
    assert {"Message", "Delivery", "Provider answer (recipients masked)"} <= {h.strip() for h in headings}
    # Masked for a tenant admin unless given the permission; then in full, on this page only.
    assert "138****8000" in page.locator("div.field-masked_recipient").inner_text()
    ada.user_permissions.add(Permission.objects.get(codename="view_full_recipient"))
    page.reload()
    assert "+8613800138000" in page.locator("div.field-recipient").inner_text()
    page.goto(LOGS)
    assert "+8613800138000" not in page.locator("#result_list").inner_text()
    page.goto(f"{LOGS}{failed.id}/change/")
    follow(page, "input[value=Retry], button:has-text('Retry')")
    assert "queued again" in page.locator("ul.messagelist").inner_text()
    copy = CommunicationLog.objects.get(retry_of=failed.id)
    page.goto(f"{LOGS}{failed.id}/change/")
    assert copy.id in page.locator("div.field-retried_as").inner_text()  # the original is marked
    follow(page, f"div.field-retried_as a:has-text('{copy.id}')")
    assert page.url.endswith(f"/{quote(copy.id)}/change/"), page.url
    assert failed.id in page.locator("div.field-retry_of_link").inner_text()
    follow(page, "div.field-batch_link a")
    assert "/batch/" in page.url, page.url
    shot(page, "10-batch-of-a-retry")


@pytest.mark.parametrize("persona", PERSONAS)
def test_11_dashboard_figures_open_their_lists_with_a_tenant_breakdown_and_charts(page, console, persona):
    log_in(page, persona)
    charts = page.locator("#dashboard-24h figure.chart")
    assert charts.count() >= 2 and page.locator("#dashboard-24h figure.chart polyline").count() >= 2
    tenant_lines = page.locator("#dashboard-7d table.tenants tbody tr")
    if persona == "ada":
        assert tenant_lines.count() == 0 and "Globex" not in page.locator("#delivery-dashboard").inner_text()
        return
    assert tenant_lines.count() == 2
    globex = page.locator("#dashboard-7d table.tenants tr:has-text('Globex')")
    assert globex.locator("td.failed").inner_text() == "1"
    with page.expect_navigation():
        globex.locator("td.failed a").click()
    assert rows(page) and len(rows(page)) == 1 and "Globex failure" in rows(page)[0]


def test_12_staff_actions_are_an_audit_trail_for_the_platform_admin_only(page, console):
    log_in(page, "ada")
    page.goto(f"{LOGS}{console['logs']['failed'].id}/change/")
    follow(page, "input[value=Retry], button:has-text('Retry')")
    assert page.request.get("/admin/admin/logentry/").status == 403
    page.context.clear_cookies()
    log_in(page, "root")
    page.goto("/admin/admin/logentry/")
    trail = page.locator("#result_list").inner_text()
    assert "ada" in trail and "Retried" in trail and console["logs"]["failed"].id in page.content()
    assert (
        page.locator("select[name=action]").count() == 0
        and page.locator(".object-tools a.addlink").count() == 0
    )


# --- Screenshots -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", VIEWPORTS)
def test_screenshots_of_the_list_detail_and_dashboard(page, console, size):
    width, height = VIEWPORTS[size]
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, "root")
    shot(page, f"dashboard-{size}", folder=SCREENSHOTS)
    page.goto(LOGS)
    assert page.locator("#result_list").is_visible()
    shot(page, f"logs-list-{size}", folder=SCREENSHOTS)
    page.goto(f"{LOGS}{console['logs']['failed'].id}/change/")
    assert page.locator("div.field-masked_error").is_visible()
    shot(page, f"log-detail-{size}", folder=SCREENSHOTS)
