"""Delivery-status polling (sms/log) and SUBHOOK pushes, against the fake SUBMAIL server."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from communication.models import CommunicationLog, Suppression, SyncCursor, SyncRun
from communication.status_sync import status_sync_tick
from tests.conftest import SUBHOOK_KEY

SUBHOOK_URL = "/api/v1/providers/submail/subhook"


def next_minute(fake_submail):
    """Let the next tick through without waiting a real minute."""
    from django.core.cache import cache

    cache.clear()
    fake_submail.forget_log_cache()


def test_one_tick_applies_delivered_and_dropped_reports_in_bulk(
    sent_logs, fake_submail, django_assert_max_num_queries
):
    logs = sent_logs(5)
    fake_submail.report([log.provider_message_id for log in logs[:4]], "delivered")
    fake_submail.report([logs[4].provider_message_id], "dropped", reason="空号/停机")
    # Constant, whatever the page size: the focused cursor and held-message lookups, cursor
    # get-or-create (4 on the first tick), the reconciling-log lookup, id lookup, one UPDATE
    # per status, the run row, the cursor save, the window-complete check. The lock is in Redis.
    with django_assert_max_num_queries(12):
        run = status_sync_tick(provider_name="submail")
    assert (run.received, run.applied, run.unknown, run.error) == (5, 5, 0, "")
    for log in logs:
        log.refresh_from_db()
    assert [log.status for log in logs] == ["delivered"] * 4 + ["failed"]
    assert all(log.delivered_at for log in logs[:4])
    assert "空号/停机" in logs[4].error and "mk:0012" in logs[4].error


def test_a_second_tick_within_the_minute_makes_no_http_call(sent_logs, fake_submail):
    sent_logs(1)
    assert status_sync_tick(provider_name="submail") is not None
    calls = fake_submail.calls("sms/log")
    assert status_sync_tick(provider_name="submail") is None
    assert fake_submail.calls("sms/log") == calls


def test_the_cursor_pages_through_a_window_across_ticks(sent_logs, fake_submail, settings):
    settings.STATUS_SYNC_ROWS = 2
    logs = sent_logs(5)
    fake_submail.report([log.provider_message_id for log in logs], "delivered")
    offsets = []
    for _ in range(3):
        run = status_sync_tick(provider_name="submail")
        offsets.append(run.offset)
        next_minute(fake_submail)
    assert offsets == [0, 2, 4]
    assert set(CommunicationLog.objects.values_list("status", flat=True)) == {"delivered"}
    cursor = SyncCursor.objects.get()
    assert cursor.window_done and (cursor.offset, cursor.total) == (5, 5)


def test_a_new_window_overlaps_the_last_one(sent_logs, fake_submail, settings):
    sent_logs(1)
    status_sync_tick(provider_name="submail")
    first_end = SyncCursor.objects.get().window_end
    next_minute(fake_submail)
    status_sync_tick(provider_name="submail")
    cursor = SyncCursor.objects.get()
    assert cursor.window_start == first_end - timedelta(seconds=settings.STATUS_SYNC_OVERLAP_SECONDS)


def test_a_cached_page_is_recognised_and_not_counted(sent_logs, fake_submail, settings):
    settings.STATUS_SYNC_ROWS = 1
    sent_logs(3)
    status_sync_tick(provider_name="submail")
    from django.core.cache import cache

    cache.clear()  # our lock expired early, but SUBMAIL's minute has not
    run = status_sync_tick(provider_name="submail")
    assert "cached page" in run.error
    assert SyncCursor.objects.get().offset == 1


def test_a_cached_answer_to_the_previous_window_is_not_trusted_for_a_new_one(
    sent_logs, fake_submail, monkeypatch
):
    """Both queries start at offset 0; only the echoed window tells the answers apart."""
    from django.core.cache import cache
    from django.utils import timezone

    logs = sent_logs(2)
    first = status_sync_tick(provider_name="submail")
    assert first.error == "" and SyncCursor.objects.get().window_done
    fake_submail.report([logs[0].provider_message_id], "delivered")
    cache.clear()  # our lock expired early, but SUBMAIL's minute has not
    later = timezone.now() + timedelta(seconds=30)
    monkeypatch.setattr("communication.status_sync.timezone.now", lambda: later)
    run = status_sync_tick(provider_name="submail")
    assert "cached page" in run.error and run.applied == 0
    logs[0].refresh_from_db()
    assert logs[0].status == "sent"  # the stale page said nothing of it; the next real page will


def test_unknown_send_ids_are_counted_not_errors(sent_logs, fake_submail, alice):
    logs = sent_logs(1)
    fake_submail.report([logs[0].provider_message_id], "delivered")
    CommunicationLog.objects.filter(id=logs[0].id).update(provider_message_id="someone-else")
    run = status_sync_tick(provider_name="submail")
    assert (run.unknown, run.applied, run.error) == (1, 0, "")


def test_a_failed_call_is_recorded_and_the_cursor_kept(sent_logs, fake_submail, settings):
    sent_logs(1)
    settings.SUBMAIL_APPKEY = "wrong"
    from providers.registry import reset_cache

    reset_cache()
    run = status_sync_tick(provider_name="submail")
    assert "108" in run.error and SyncCursor.objects.get().offset == 0
    assert SyncRun.objects.count() == 1


def test_a_late_sent_never_overwrites_delivered(sent_logs, fake_submail):
    (log,) = sent_logs(1)
    fake_submail.report([log.provider_message_id], "delivered")
    status_sync_tick(provider_name="submail")
    _post_subhook({"events": "sending", "send_id": log.provider_message_id, "address": "13900000000"})
    log.refresh_from_db()
    assert log.status == "delivered"


# --- SUBHOOK ------------------------------------------------------------------------------


def _post_subhook(fields, *, key=SUBHOOK_KEY, as_json=False, token=None):
    """A signed push; each gets a fresh one-time token, as SUBMAIL's do, unless one is given."""
    import hashlib
    import uuid

    token = token or uuid.uuid4().hex
    signature = hashlib.md5(f"{token}{key}".encode()).hexdigest()
    data = {"timestamp": "1415014855", "token": token, "signature": signature, "app": "10001", **fields}
    client = APIClient()
    if as_json:
        return client.post(SUBHOOK_URL, data, format="json")
    return client.post(SUBHOOK_URL, data)  # multipart, as SUBMAIL may send


@pytest.mark.parametrize("as_json", [False, True])
def test_subhook_delivered_updates_the_log(sent_logs, as_json):
    (log,) = sent_logs(1)
    response = _post_subhook(
        {"events": "delivered", "send_id": log.provider_message_id, "address": "13900000000"}, as_json=as_json
    )
    assert response.status_code == 200 and response.json()["data"]["applied"] == 1
    log.refresh_from_db()
    assert log.status == "delivered"
    assert log.delivered_at == datetime(2014, 11, 3, 11, 40, 55, tzinfo=UTC)  # the push's timestamp


def test_subhook_duplicates_and_out_of_order_events_are_harmless(sent_logs):
    (log,) = sent_logs(1)
    dropped = {
        "events": "dropped",
        "send_id": log.provider_message_id,
        "address": "13900000000",
        "report": "UNDELIV",
    }
    for event in (dropped, dropped, {**dropped, "events": "delivered"}, {**dropped, "events": "sending"}):
        assert _post_subhook(event).status_code == 200
    log.refresh_from_db()
    assert log.status == "failed" and "UNDELIV" in log.error


def test_subhook_with_a_bad_signature_is_403_and_changes_nothing(sent_logs):
    (log,) = sent_logs(1)
    response = _post_subhook({"events": "delivered", "send_id": log.provider_message_id}, key="wrong-key")
    assert response.status_code == 403 and response.json()["code"] == 403
    log.refresh_from_db()
    assert log.status == "sent"


def test_subhook_without_token_is_403(fake_submail):
    assert APIClient().post(SUBHOOK_URL, {"events": "delivered"}).status_code == 403


def test_subhook_is_refused_when_no_key_is_configured(sent_logs, settings):
    settings.SUBMAIL_SUBHOOK_KEY = ""
    assert _post_subhook({"events": "delivered", "send_id": "x"}, key="").status_code == 403


@pytest.mark.parametrize("reply", ["TD", " td ", "退订", "Unsubscribe"])
def test_unsubscribe_reply_suppresses_the_number_in_tenants_that_texted_it(sent_logs, alice, bob, reply):
    sent_logs(1)  # alice's tenant texted +8613900000000
    response = _post_subhook({"events": "mo", "address": "13900000000", "content": reply})
    assert response.json()["data"]["suppressed"] == 1
    assert list(Suppression.objects.values_list("tenant_id", "recipient", "reason")) == [
        (alice.tenant_id, "+8613900000000", "unsubscribed")
    ]


def test_an_ordinary_reply_changes_nothing(sent_logs):
    sent_logs(1)
    assert (
        _post_subhook({"events": "mo", "address": "13900000000", "content": "thanks!"}).json()["data"][
            "suppressed"
        ]
        == 0
    )
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("event", ["request", "unknown", "template_accept", "template_reject"])
def test_other_events_are_acknowledged(db, fake_submail, event):
    assert _post_subhook({"events": event, "template_id": "H5OSN4"}).status_code == 200


def test_the_beat_task_polls_nothing_when_no_provider_in_use_polls(db, settings):
    from communication.tasks import sync_delivery_status

    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "console"}
    assert sync_delivery_status() == []
    assert not SyncRun.objects.exists()


def test_every_pollable_provider_on_a_route_is_polled_and_no_other(db, settings, fake_submail, fake_aliyun):
    from communication.status_sync import pollable_providers

    settings.CHANNEL_PROVIDERS = {"sms": "aliyun", "email": "smtp"}
    settings.FAILOVER_PROVIDERS = {"sms": ["submail"]}
    assert pollable_providers() == ["submail"]  # Aliyun pushes its receipts; SMTP keeps none
    settings.FAILOVER_PROVIDERS = {"sms": []}
    assert pollable_providers() == []
