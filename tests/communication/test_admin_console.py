"""The logs console: badges, timeline, retry through the pipeline, streamed CSV, cheap counts."""

import csv
import io
import re
from datetime import UTC, datetime

from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from authms.admin_paginator import EstimatedCountPaginator
from communication.models import CommunicationLog, Device, Suppression
from templates.models import Template
from tests.factories import LogFactory

CHANGELIST = reverse("admin:communication_communicationlog_changelist")


def _detail(log):
    return reverse("admin:communication_communicationlog_change", args=[log.id])


def _csv(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_status_is_a_coloured_badge_and_detail_has_a_timeline(client, ada, alice):
    log = LogFactory(user=alice, status="failed", error="Number is blocklisted")
    client.force_login(ada)
    assert 'class="status-badge"' in client.get(CHANGELIST).content.decode()
    page = client.get(_detail(log)).content.decode()
    assert "created" in page and "status-badge" in page and "Number is blocklisted" in page


def test_retry_queues_a_copy_through_the_pipeline_and_keeps_the_failed_log(
    client, ada, alice, recording_provider, django_capture_on_commit_callbacks
):
    failed = LogFactory(user=alice, status="failed", error="Outcome unknown", provider="recording")
    sent = LogFactory(user=alice, status="sent", provider="recording")
    client.force_login(ada)
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            CHANGELIST, {"action": "retry_failed", "_selected_action": [failed.id, sent.id]}, follow=True
        ).content.decode()
    assert "1 log queued again" in page and "1 skipped: not failed or not visible" in page
    copy = CommunicationLog.objects.get(retry_of=failed.id)
    assert copy.status == "sent" and copy.recipient == failed.recipient and copy.user_id == alice.id
    failed.refresh_from_db()
    assert failed.status == "failed"  # never moved backwards
    assert [m.log_id for m in recording_provider.received] == [copy.id]


def test_retry_skips_erased_sensitive_text_and_suppressed_recipients(client, ada, alice, recording_provider):
    template = Template.objects.create(
        tenant=alice.tenant, code="otp", channel="sms", name="OTP", body="{{code}}", sensitive=True
    )
    sensitive = LogFactory(user=alice, status="failed", template=template, content="******")
    suppressed = LogFactory(user=alice, status="failed", recipient="+8613900139000")
    Suppression.objects.create(tenant=alice.tenant, channel="sms", recipient="+8613900139000")
    client.force_login(ada)
    page = client.post(
        CHANGELIST, {"action": "retry_failed", "_selected_action": [sensitive.id, suppressed.id]}, follow=True
    ).content.decode()
    assert "erased after sending" in page and "recipient is suppressed" in page
    assert not CommunicationLog.objects.filter(retry_of__isnull=False).exists()


def test_retry_skips_a_log_whose_channel_has_no_provider_instead_of_failing(
    client, ada, alice, recording_provider, settings
):
    settings.CHANNEL_PROVIDERS = {"sms": "recording"}  # this deployment sends no email
    email = LogFactory(
        user=alice, status="failed", channel="email", recipient="ann@example.com", provider="smtp"
    )
    sms = LogFactory(user=alice, status="failed", provider="recording")
    client.force_login(ada)
    response = client.post(
        CHANGELIST, {"action": "retry_failed", "_selected_action": [email.id, sms.id]}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 skipped: no provider is configured for its channel" in page and "1 log queued again" in page
    assert list(
        CommunicationLog.objects.filter(retry_of__isnull=False).values_list("retry_of", flat=True)
    ) == [sms.id]


def test_a_push_log_is_retried_to_its_device_through_its_push_service(client, ada, alice, settings):
    settings.PUSH_PROVIDERS = {"fcm": "console", "webpush": "console"}
    device = Device.objects.create(
        tenant=alice.tenant, user=alice, platform="android", provider="fcm", token="t" * 40
    )
    gone = Device.objects.create(
        tenant=alice.tenant, user=alice, platform="android", provider="fcm", token="u" * 40, active=False
    )
    push = LogFactory(user=alice, status="failed", channel="push", recipient=device.id, provider="console",
                      subject="Hi", push_data={"data": {"order": "42"}, "link": "myapp://orders/42"})  # fmt: skip
    stale = LogFactory(user=alice, status="failed", channel="push", recipient=gone.id, provider="console")
    client.force_login(ada)
    page = client.post(
        CHANGELIST, {"action": "retry_failed", "_selected_action": [push.id, stale.id]}, follow=True
    )
    assert "1 skipped: the device is no longer registered or active" in page.content.decode()
    copy = CommunicationLog.objects.get(retry_of=push.id)
    assert (copy.recipient, copy.provider, copy.push_data) == (device.id, "console", push.push_data)


def test_retry_names_every_batch_it_made_in_the_staff_language(client, root, alice, bob, recording_provider):
    mine = LogFactory(user=alice, status="failed", provider="recording")
    theirs = LogFactory(user=bob, status="failed", provider="recording")
    client.force_login(root)
    page = client.post(
        CHANGELIST, {"action": "retry_failed", "_selected_action": [mine.id, theirs.id]}, follow=True,
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    ).content.decode()  # fmt: skip
    batches = sorted(
        CommunicationLog.objects.filter(retry_of__isnull=False).values_list("batch_id", flat=True)
    )
    assert len(set(batches)) == 2 and all(batch in page for batch in batches)  # one batch per tenant
    assert "条日志重新排队" in page


def test_export_selected_rows_as_masked_csv(client, ada, alice):
    log = LogFactory(user=alice, recipient="+8613700137000")
    client.force_login(ada)
    response = client.post(CHANGELIST, {"action": "export_csv", "_selected_action": [log.id]})
    assert response["Content-Type"].startswith("text/csv") and response.streaming
    header, row = _csv(response)
    assert header[:3] == ["id", "created_at", "tenant_id"] and row[0] == log.id and "137****7000" in row


def test_export_the_filtered_changelist_streams_every_matching_row(client, ada, alice, bob):
    for _ in range(120):
        LogFactory(user=alice, status="failed")
    LogFactory(user=alice, status="sent")
    LogFactory(user=bob, status="failed")
    client.force_login(ada)
    rows = _csv(client.get(CHANGELIST, {"status__exact": "failed", "export": "csv"}))
    assert len(rows) == 121 and {row[7] for row in rows[1:]} == {"failed"}  # header + own tenant only


def test_paginator_counts_exactly_when_small_and_estimates_when_large(alice, monkeypatch):
    for _ in range(5):
        LogFactory(user=alice)
    assert EstimatedCountPaginator(CommunicationLog.objects.all(), 2).count == 5
    monkeypatch.setattr("authms.admin_paginator.EXACT_UP_TO", 3)
    estimate = EstimatedCountPaginator(CommunicationLog.objects.all(), 2).count
    assert estimate >= 4  # the planner's figure, never below what was seen exactly


def test_export_streams_100k_rows_without_holding_them_in_memory(client, ada, alice):
    import tracemalloc

    from django.db import connection

    with connection.cursor() as cursor:  # 100k rows quickly; the export is what is under test
        cursor.execute(
            """
            INSERT INTO communication_log (id, tenant_id, user_id, channel, provider, recipient, subject, content,
                status, attempts, created_at, updated_at)
            SELECT 'log_' || lpad(g::text, 26, '0'), %s, %s, 'sms', 'console', '+8613800138000', '', 'x',
                   'sent', 1, now(), now()
            FROM generate_series(1, 100000) AS g
            """,
            [alice.tenant_id, alice.id],
        )
    client.force_login(ada)
    response = client.get(CHANGELIST, {"export": "csv"})
    tracemalloc.start()
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lines == 100_001
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_the_provider_filter_lists_only_the_staff_members_tenants_providers(client, ada, root, alice, bob):
    LogFactory(user=alice, provider="submail")
    LogFactory(user=bob, provider="aliyun")  # another tenant's provider
    client.force_login(ada)
    page = client.get(CHANGELIST).content.decode()
    assert "?provider=submail" in page and "?provider=aliyun" not in page
    client.force_login(root)
    page = client.get(CHANGELIST).content.decode()
    assert "?provider=submail" in page and "?provider=aliyun" in page


def test_csv_export_with_a_filter_the_list_does_not_have_is_refused_like_the_list(client, ada, alice):
    LogFactory(user=alice)
    client.force_login(ada)
    response = client.get(CHANGELIST, {"bogus": "1", "export": "csv"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_records_cannot_be_deleted_in_the_console_even_by_the_platform_admin(client, root, alice):
    log = LogFactory(user=alice)
    client.force_login(root)
    assert (
        client.get(reverse("admin:communication_communicationlog_delete", args=[log.id])).status_code == 403
    )
    page = client.get(CHANGELIST).content.decode()
    assert 'value="delete_selected"' not in page
    for name in ("notifications_notification", "communication_batch", "communication_syncrun"):
        assert (
            'value="delete_selected"' not in client.get(reverse(f"admin:{name}_changelist")).content.decode()
        )
    assert CommunicationLog.objects.filter(id=log.id).exists()


def test_the_list_shows_what_support_looks_for_first(client, ada, root, alice):
    LogFactory(user=alice, status="failed", error="Number is blocklisted", recipient="+8613700137000")
    client.force_login(ada)
    page = client.get(CHANGELIST).content.decode()
    headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
    assert headers[:7] == [
        "created",
        "masked_recipient",
        "user",
        "channel",
        "status_badge",
        "provider",
        "short_error",
    ]
    assert "Number is blocklisted" in page and "137****7000" in page and "+8613700137000" not in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</a>", page)  # seconds and the zone
    assert "column-tenant" not in page
    client.force_login(root)
    assert "column-tenant" in client.get(CHANGELIST).content.decode()


def test_search_finds_what_staff_type_and_nothing_else(client, ada, alice, bob):
    number = LogFactory(user=alice, recipient="+8613800138000", batch_id="bat_A1", provider_message_id="pm-1")
    LogFactory(
        user=alice, recipient="+8613800138001", batch_id="bat_A2", provider_message_id="pm-2"
    )  # must not match
    ann = LogFactory(user=alice, channel="email", recipient="ann@example.com")
    LogFactory(user=alice, channel="email", recipient="anna@example.org")  # must not match "ann@"
    LogFactory(user=bob, recipient="+8613800138000")  # another tenant: never
    client.force_login(ada)

    def found(term):
        page = client.get(CHANGELIST, {"q": term}).content.decode()
        return set(re.findall(r'name="_selected_action" value="([^"]+)"', page))

    for term in (
        "13800138000",
        "138 0013 8000",
        "+86 138 0013 8000",
        "+8613800138000",
        "bat_A1",
        "pm-1",
        number.id,
    ):
        assert found(term) == {number.id}, term
    for term in ("ann@", "ann@exam", "ANN@example.com"):
        assert found(term) == {ann.id}, term


def test_the_detail_page_is_grouped_links_its_batch_and_retries_and_has_a_retry_button(
    client, ada, alice, bob, recording_provider, django_capture_on_commit_callbacks
):
    from django.contrib.admin.utils import quote

    def linked(log):  # the admin quotes ids in its links ("_" → "_5F")
        return reverse("admin:communication_communicationlog_change", args=[quote(log.id)])

    def retry_url(log):
        return reverse("admin:communication_communicationlog_retry", args=[quote(log.id)])

    failed = LogFactory(
        user=alice, status="failed", provider="recording", batch_id="bat_ORIGINAL", error="Timeout"
    )
    sent = LogFactory(user=alice, status="sent", provider="recording")
    client.force_login(ada)
    page = client.get(_detail(failed)).content.decode()
    for group in ("Message", "Delivery", "Provider answer (recipients masked)"):
        assert f">{group}</h2>" in page, group
    assert reverse("admin:communication_batch_change", args=["bat_ORIGINAL"]) in page
    assert retry_url(failed) in page and retry_url(sent) not in client.get(_detail(sent)).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_url(failed))
    copy = CommunicationLog.objects.get(retry_of=failed.id)
    assert response.status_code == 302 and response["Location"] == linked(copy)
    assert linked(failed) in client.get(_detail(copy)).content.decode()  # "retry of" links back
    assert linked(copy) in client.get(_detail(failed)).content.decode()  # the original is marked "retried as"

    theirs = LogFactory(user=bob, status="failed", provider="recording")
    assert client.post(retry_url(theirs)).status_code == 403
    assert not CommunicationLog.objects.filter(retry_of=theirs.id).exists()


def _log_table_queries(queries) -> list[str]:
    """Queries that read the log table itself (not its maintained counts)."""
    return [q["sql"] for q in queries if re.search(r'FROM "communication_log"(?!_count)', q["sql"])]


def test_the_lists_count_comes_from_the_maintained_counts_when_the_filters_allow(
    client, ada, root, alice, bob
):
    for status in ("failed", "failed", "delivered"):
        LogFactory(user=alice, status=status)
    LogFactory(user=alice, status="failed", channel="email", provider="smtp")
    LogFactory(user=bob, status="failed")
    cases = [
        (ada, {"status__exact": "failed"}, 3),
        (ada, {"status__exact": "failed", "channel__exact": "sms"}, 2),
        (ada, {"provider": "smtp", "o": "-1"}, 1),
        (ada, {}, 4),
        (root, {"status__exact": "failed"}, 4),
        (root, {"status__exact": "failed", "tenant__id__exact": bob.tenant_id}, 1),
    ]
    for user, params, expected in cases:
        client.force_login(user)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(CHANGELIST, params)
        assert response.status_code == 200
        assert (response.context["cl"].result_count, len(response.context["cl"].result_list)) == (
            expected,
            expected,
        )
        # The page itself reads the log table; nothing counts it.
        assert not [sql for sql in _log_table_queries(queries) if "COUNT(" in sql], params
    # A filter the counts cannot answer: the estimating paginator's bounded exact count.
    client.force_login(ada)
    response = client.get(CHANGELIST, {"status__exact": "failed", "q": "+8613800138000"})
    assert response.context["cl"].result_count == 3


def test_the_date_hierarchy_comes_from_the_counts_and_follows_tenant_and_filters(client, ada, alice, bob):
    LogFactory(user=alice, status="delivered", created_at=datetime(2026, 3, 4, 10, tzinfo=UTC))
    LogFactory(user=alice, status="failed", created_at=datetime(2025, 7, 9, 23, tzinfo=UTC))
    LogFactory(user=alice, status="delivered", created_at=datetime(2025, 8, 1, 1, tzinfo=UTC))
    LogFactory(user=bob, status="failed", created_at=datetime(2024, 1, 2, tzinfo=UTC))

    def hierarchy(**params):
        with CaptureQueriesContext(connection) as queries:
            page = client.get(CHANGELIST, params).content.decode()
        toplinks = re.search(r'<nav class="toplinks">(.*?)</nav>', page, re.S)
        links = (
            re.findall(r"<a [^>]*>(?:&lsaquo; )?([^<]+)</a>|\n([^<\n]+)\n", toplinks.group(1))
            if toplinks
            else []
        )
        assert not [sql for sql in _log_table_queries(queries) if "DISTINCT" in sql or "MIN(" in sql], params
        return [(linked or plain).strip() for linked, plain in links if (linked or plain).strip()]

    client.force_login(ada)
    assert hierarchy() == ["2025", "2026"]  # not Globex's 2024
    assert hierarchy(status__exact="failed") == ["2025", "July 9"]  # one month: opens on its days
    assert hierarchy(created_at__year="2025") == ["All dates", "July 2025", "August 2025"]
    assert hierarchy(created_at__year="2025", created_at__month="7") == ["2025", "July 9"]
    assert hierarchy(channel__exact="email") == []


def test_the_full_recipient_shows_on_the_detail_page_only_with_the_permission(client, ada, root, alice):
    log = LogFactory(user=alice, recipient="+8613800138000")
    LogFactory(user=alice, recipient="+8613900139000")
    client.force_login(ada)
    detail = client.get(_detail(log)).content.decode()
    assert "+8613800138000" not in detail and "138****8000" in detail
    ada.user_permissions.add(Permission.objects.get(codename="view_full_recipient"))
    ada = type(ada).objects.get(pk=ada.pk)  # a fresh permission cache
    client.force_login(ada)
    detail = client.get(_detail(log)).content.decode()
    assert "+8613800138000" in detail and "+8613900139000" not in detail
    for user in (ada, root):  # lists stay masked for everyone
        client.force_login(user)
        assert "+8613800138000" not in client.get(CHANGELIST).content.decode()
