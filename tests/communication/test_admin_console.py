"""The logs console: badges, timeline, retry through the pipeline, streamed CSV, cheap counts."""

import csv
import io

from django.urls import reverse

from authms.admin_paginator import EstimatedCountPaginator
from communication.models import CommunicationLog, Suppression
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
    assert "1 logs queued again" in page and "1 skipped: not failed or not visible" in page
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
