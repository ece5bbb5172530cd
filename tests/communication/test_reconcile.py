"""Unknown outcomes are settled from the gateway's own records, never resent blindly."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from communication.models import CommunicationLog
from communication.services import dispatch_pending, logs_retry, sweep_pending
from communication.status_sync import status_sync_tick
from tests.communication.test_status_sync import _post_subhook
from tests.factories import LogFactory


@pytest.fixture
def submail_logs(alice, fake_submail):
    def make(count, batch="bat_R"):
        for i in range(count):
            LogFactory(
                user=alice, provider="submail", batch_id=batch, recipient=f"+86139{i:08d}", content="Hi"
            )
        return list(CommunicationLog.objects.filter(batch_id=batch).order_by("id"))

    return make


def _a_minute_later(fake_submail):
    """The status sync's lock and SUBMAIL's per-minute cache both expire."""
    cache.clear()
    fake_submail.forget_log_cache()


def _held(logs):
    for log in logs:
        log.refresh_from_db()
    return [log for log in logs if log.status_detail == "reconciling"]


def test_a_read_timeout_after_submail_stored_it_is_settled_as_sent_from_sms_log(
    submail_logs, fake_submail, settings
):
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.4  # stored, then too slow
    logs = submail_logs(2)
    report = dispatch_pending(batch_id="bat_R")
    assert report.reconciling == 2 and len(_held(logs)) == 2
    assert logs[0].status == "pending" and "Outcome unknown" in logs[0].error and logs[0].provider_ref

    fake_submail.faults.slow = 0.0
    run = status_sync_tick(provider_name="submail")
    assert run.error == ""
    for log in logs:
        log.refresh_from_db()
        assert (log.status, log.status_detail, log.error) == ("sent", "", "")
        assert log.provider_message_id in fake_submail.messages
    assert len(fake_submail.messages) == 2  # nothing was sent again


def test_a_message_submail_never_stored_is_queued_again_once_its_window_was_read(
    submail_logs, fake_submail, settings
):
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    fake_submail.faults.reset, fake_submail.faults.after_processing = 1.0, False  # dropped before storing
    logs = submail_logs(1)
    dispatch_pending(batch_id="bat_R")
    assert len(_held(logs)) == 1 and fake_submail.messages == {}
    # Held and handed over a while ago (the window must reach 10 min past the hand-over).
    earlier = timezone.now() - timedelta(minutes=15)
    CommunicationLog.objects.update(claimed_at=earlier, updated_at=earlier)

    fake_submail.faults.reset = 0.0
    assert status_sync_tick(provider_name="submail").window_end < timezone.now() - timedelta(
        minutes=13
    )  # the focused pass
    assert len(_held(logs)) == 1  # a focused pass never concludes "not sent"
    _a_minute_later(fake_submail)
    status_sync_tick(provider_name="submail")  # the general pass reads its whole window
    (log,) = logs
    log.refresh_from_db()
    assert (log.status, log.status_detail, log.claimed_at) == ("pending", "retrying", None)
    assert dispatch_pending(batch_id="bat_R").sent == 1
    assert len(fake_submail.messages) == 1


def test_a_window_read_before_the_log_was_held_does_not_requeue_it(submail_logs, fake_submail, settings):
    """Records read before the hold could not have been matched: no requeue on their account."""
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    fake_submail.faults.reset, fake_submail.faults.after_processing = 1.0, False
    logs = submail_logs(1)
    dispatch_pending(batch_id="bat_R")
    CommunicationLog.objects.update(claimed_at=timezone.now() - timedelta(minutes=15))  # held just now
    from communication.models import SyncCursor

    fake_submail.faults.reset = 0.0
    SyncCursor.objects.create(
        provider="submail", account="10001", window_start=timezone.now() - timedelta(hours=1),
        window_end=timezone.now() - timedelta(minutes=1), offset=0, total=None,
    )  # fmt: skip
    status_sync_tick(provider_name="submail")  # focused
    _a_minute_later(fake_submail)
    assert status_sync_tick(provider_name="submail").window_end < timezone.now() - timedelta(
        seconds=50
    )  # the general window
    assert len(_held(logs)) == 1


def test_a_push_carrying_our_tag_settles_the_message(submail_logs, fake_submail, settings):
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.4
    (log,) = submail_logs(1)
    dispatch_pending(batch_id="bat_R")
    (send_id, stored) = next(iter(fake_submail.messages.items()))
    assert stored.tag == CommunicationLog.objects.get().provider_ref  # the request carried it
    response = _post_subhook(
        {"events": "delivered", "send_id": send_id, "address": stored.to, "tag": stored.tag}
    )
    assert response.json()["data"]["reconciled"] == 1
    log.refresh_from_db()
    assert (log.status, log.provider_message_id) == ("delivered", send_id)


def test_records_already_attached_to_another_log_or_with_other_text_are_not_matched(
    submail_logs, fake_submail, alice
):
    from communication.services.reconcile import logs_hold_for_reconciliation, reconcile_records
    from providers.base import SentRecord

    (log,) = submail_logs(1)
    now = timezone.now()
    CommunicationLog.objects.filter(id=log.id).update(claimed_at=now, provider_ref="r1")
    logs_hold_for_reconciliation(log_ids=[log.id], reason="unknown")
    LogFactory(user=alice, provider="submail", status="sent", provider_message_id="taken")
    records = [
        SentRecord("taken", log.recipient, ("【Acme】Hi",), "", now),  # another log's message
        SentRecord("other-text", log.recipient, ("【Acme】Bye",), "", now),
        SentRecord("too-late", log.recipient, ("【Acme】Hi",), "", now + timedelta(minutes=10)),
    ]
    assert reconcile_records(provider="submail", records=records) == 0
    assert (
        reconcile_records(
            provider="submail", records=[SentRecord("ok", log.recipient, ("【Acme】Hi",), "", now)]
        )
        == 1
    )


def test_past_the_deadline_it_fails_as_unknown_saying_why(submail_logs, fake_submail, settings):
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.4
    (log,) = submail_logs(1)
    dispatch_pending(batch_id="bat_R")
    CommunicationLog.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert sweep_pending().expired == 1
    log.refresh_from_db()
    assert (log.status, log.status_detail) == ("failed", "unknown") and "deadline" in log.error


def test_a_dead_workers_claim_is_reconciled_where_the_gateway_can_be_asked(alice, fake_submail):
    old = timezone.now() - timedelta(minutes=15)
    askable = LogFactory(user=alice, provider="submail", batch_id="bat_D", claimed_at=old, provider_ref="r9")
    not_askable = LogFactory(
        user=alice, provider="console", batch_id="bat_D", claimed_at=old, provider_ref="r9"
    )
    CommunicationLog.objects.update(updated_at=old)  # and no heartbeat since
    report = sweep_pending()
    assert report.abandoned == 2
    askable.refresh_from_db()
    not_askable.refresh_from_db()
    assert (askable.status, askable.status_detail) == ("pending", "reconciling")
    assert (not_askable.status, not_askable.status_detail) == ("failed", "unknown")
    assert sweep_pending().abandoned == 0  # held, not abandoned again


def test_staff_cannot_resend_a_message_that_is_still_being_reconciled(
    submail_logs, fake_submail, ada, settings
):
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.4
    (log,) = submail_logs(1)
    dispatch_pending(batch_id="bat_R")
    result = logs_retry(actor=ada, log_ids=[log.id])
    assert result.retried == 0 and result.skipped == {"not failed or not visible": 1}


def test_providers_that_cannot_be_asked_fail_unknown_at_once(alice, recording_provider):
    from providers.base import SendResult

    recording_provider.behaviour = lambda m: SendResult.unknown("read timeout")
    log = LogFactory(user=alice, provider="recording", batch_id="bat_U")
    dispatch_pending(batch_id="bat_U")
    log.refresh_from_db()
    assert (log.status, log.status_detail) == ("failed", "unknown")


def test_status_detail_is_served_and_filterable(client_for, alice):
    LogFactory(user=alice, status="pending", status_detail="retrying")
    LogFactory(user=alice, status="pending", status_detail="queued")
    response = client_for(alice).get("/api/v1/communication/logs", {"status_detail": "retrying"})
    assert [item["status_detail"] for item in response.json()["items"]] == ["retrying"]
    assert client_for(alice).get("/api/v1/communication/logs", {"status_detail": "bogus"}).status_code == 400


def test_finer_states_through_a_batch(
    client_for, alice, recording_provider, django_capture_on_commit_callbacks
):
    from providers.base import ProviderError

    recording_provider.behaviour = ProviderError("Connection refused", permanent=False)
    body = {"channel": "sms", "content": "x", "recipients": ["13800138000", "123"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post("/api/v1/communication/bulk", body, format="json")
    assert Counter(item["status_detail"] for item in response.json()["items"]) == {"queued": 1, "invalid": 1}
    assert Counter(CommunicationLog.objects.values_list("status_detail", flat=True)) == {
        "retrying": 1,
        "invalid": 1,
    }


def test_no_record_yet_is_not_taken_as_never_sent_before_the_settle_time(
    submail_logs, fake_submail, settings
):
    """The gateway may list an accepted message late: 5 minutes without a record is not enough."""
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    fake_submail.faults.reset, fake_submail.faults.after_processing = 1.0, False
    logs = submail_logs(1)
    dispatch_pending(batch_id="bat_R")
    earlier = timezone.now() - timedelta(minutes=5)
    CommunicationLog.objects.update(claimed_at=earlier, updated_at=earlier)
    fake_submail.faults.reset = 0.0
    status_sync_tick(provider_name="submail")  # focused
    _a_minute_later(fake_submail)
    status_sync_tick(provider_name="submail")  # general, read whole, but only 5 minutes past the hand-over
    assert len(_held(logs)) == 1


def test_a_tagged_push_settles_a_message_still_in_flight_and_the_late_answer_changes_nothing(
    alice, fake_submail
):
    """SUBMAIL's `request` push can arrive before its HTTP answer, or instead of it."""
    from communication.services.dispatch import _record_results
    from communication.services.reconcile import reconcile_push
    from providers.base import SendResult
    from providers.registry import provider_by_name

    log = LogFactory(
        user=alice, provider="submail", claimed_at=timezone.now(), provider_ref="rTAG", attempts=1
    )
    assert (
        reconcile_push(
            provider="submail", reference="rTAG", recipient=log.recipient, provider_message_id="S1"
        )
        == 1
    )
    log.refresh_from_db()
    assert (log.status, log.provider_message_id) == ("sent", "S1")
    # The worker's own answer comes late (or times out): neither changes the settled log.
    from communication.services.dispatch import DispatchReport

    _record_results(
        provider_by_name("submail"), [log], [SendResult.unknown("read timeout")], DispatchReport()
    )
    log.refresh_from_db()
    assert (log.status, log.status_detail, log.provider_message_id) == ("sent", "", "S1")
    assert (
        reconcile_push(
            provider="submail", reference="rTAG", recipient=log.recipient, provider_message_id="S1"
        )
        == 0
    )


def test_a_push_for_another_reference_or_number_settles_nothing(alice, fake_submail):
    from communication.services.reconcile import reconcile_push

    log = LogFactory(user=alice, provider="submail", claimed_at=timezone.now(), provider_ref="rTAG")
    assert (
        reconcile_push(
            provider="submail", reference="rOTHER", recipient=log.recipient, provider_message_id="S"
        )
        == 0
    )
    assert (
        reconcile_push(
            provider="submail", reference="rTAG", recipient="+8613000000000", provider_message_id="S"
        )
        == 0
    )
    log.refresh_from_db()
    assert log.status == "pending"


def test_held_messages_are_asked_about_first_in_a_window_around_their_hand_over(
    submail_logs, fake_submail, settings
):
    """The general pass would page through hours of records at one page a minute; the focused
    pass reads the seconds around the hand-over, once per group of held messages."""
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.4
    logs = submail_logs(3)
    dispatch_pending(batch_id="bat_R")
    fake_submail.faults.slow = 0.0
    handed = min(log.claimed_at for log in _held(logs))
    # Hours of other traffic the general pass would read first, page after page.
    from communication.models import SyncCursor

    SyncCursor.objects.create(
        provider="submail", account="10001", window_start=timezone.now() - timedelta(hours=6),
        window_end=timezone.now(), offset=0, total=10_000,
    )  # fmt: skip
    settings.STATUS_SYNC_ROWS = 2
    run = status_sync_tick(provider_name="submail")
    assert run.window_start == handed - timedelta(seconds=10)
    assert run.window_end <= timezone.now()
    _a_minute_later(fake_submail)
    status_sync_tick(provider_name="submail")  # the focused pass's second page
    assert _held(logs) == [] and {log.status for log in logs} == {"sent"}
    _a_minute_later(fake_submail)
    assert (
        status_sync_tick(provider_name="submail").offset == 0
        and SyncCursor.objects.get(account="10001").offset == 2
    )  # general again


def test_messages_held_while_a_focused_pass_is_under_way_get_a_focused_pass_of_their_own(
    submail_logs, fake_submail, settings, alice
):
    """A focused pass covers the messages held before it began. Messages held while it pages
    through its window (a second crash a minute after the first) were handed over after that
    window, so the next focused pass must be theirs, not the general pass's hours of records."""
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    settings.STATUS_SYNC_ROWS = 2
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.4
    first = submail_logs(3)
    dispatch_pending(batch_id="bat_R")
    fake_submail.faults.slow = 0.0
    status_sync_tick(provider_name="submail")  # the focused pass over bat_R: page 1 of 2
    # sms/log times are whole seconds: in the window's last second, bat_S would be on its page 2.
    time.sleep(1.1)
    # Another number: the same number and text within seconds could pair either record with either log.
    later = [
        LogFactory(user=alice, provider="submail", batch_id="bat_S", recipient="+8613900000099", content="Hi")
    ]
    fake_submail.faults.slow = 1.0
    dispatch_pending(batch_id="bat_S")
    fake_submail.faults.slow = 0.0
    (held_later,) = _held(later)
    _a_minute_later(fake_submail)
    status_sync_tick(provider_name="submail")  # page 2 of 2: bat_R settled, its pass done
    assert _held(first) == []
    _a_minute_later(fake_submail)
    settings.STATUS_SYNC_ROWS = 100  # one page for the window around bat_S (bat_R's records too)
    run = status_sync_tick(provider_name="submail")
    assert run.window_start == held_later.claimed_at - timedelta(seconds=10)  # focused on bat_S
    assert _held(later) == [] and later[0].status == "sent"


def test_a_dead_workers_messages_are_asked_about_by_the_sweep_that_finds_them(alice, fake_submail, settings):
    from communication.tasks import sweep_pending as sweep_task

    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "submail"}
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.4
    LogFactory(user=alice, provider="submail", batch_id="bat_K", recipient="+8613900000001", content="Hi")
    dispatch_pending(batch_id="bat_K")  # the answer never came: make it a dead worker's claim
    CommunicationLog.objects.update(status_detail="")
    settings.STALE_CLAIM_SECONDS = 0
    fake_submail.faults.slow = 0.0
    sweep_task()
    log = CommunicationLog.objects.get()
    assert (log.status, log.provider_message_id in fake_submail.messages) == ("sent", True)


def test_a_live_workers_heartbeat_keeps_its_claims_from_looking_abandoned(alice, settings):
    from communication.services.heartbeat import ClaimHeartbeat

    old = timezone.now() - timedelta(minutes=2)
    log = LogFactory(user=alice, provider="submail", batch_id="bat_H", claimed_at=old, provider_ref="r1")
    CommunicationLog.objects.update(updated_at=old)
    assert ClaimHeartbeat.renew([log.id]) == 1
    assert sweep_pending().abandoned == 0
    CommunicationLog.objects.update(updated_at=old)
    assert sweep_pending().abandoned == 1  # no beat: its worker is gone


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_renews_claims_while_the_block_runs_and_stops_after(alice, settings):
    import time

    from communication.services.heartbeat import ClaimHeartbeat

    settings.CLAIM_HEARTBEAT_SECONDS = 0.1
    old = timezone.now() - timedelta(minutes=2)
    log = LogFactory(user=alice, provider="submail", claimed_at=old)
    CommunicationLog.objects.update(updated_at=old)
    with ClaimHeartbeat().beating([log.id]):
        time.sleep(0.5)  # a long provider call
    log.refresh_from_db()
    assert log.updated_at > timezone.now() - timedelta(seconds=1) and log.claimed_at == old
    time.sleep(0.3)  # a beat that took the ids just before the block ended may still be writing
    CommunicationLog.objects.update(updated_at=old)
    time.sleep(0.3)
    log.refresh_from_db()
    assert log.updated_at == old  # out of the block: no longer renewed


def test_the_heartbeat_skips_rows_a_dispatch_loop_is_writing_instead_of_waiting(
    transactional_db, on_postgres
):
    """Waiting would lock a process's claims in another order than its loops do: a deadlock."""
    import threading
    import time

    from django.db import connections, transaction

    from communication.services.heartbeat import ClaimHeartbeat
    from tests.factories import TenantFactory, UserFactory

    if not on_postgres:
        pytest.skip("row locks are PostgreSQL's")
    user = UserFactory(tenant=TenantFactory(slug="beat"))
    busy, free = (LogFactory(user=user, claimed_at=timezone.now(), provider_ref="r1") for _ in range(2))
    locked, release = threading.Event(), threading.Event()

    def loop_writing_its_result():
        with transaction.atomic():
            CommunicationLog.objects.select_for_update().get(id=busy.id)
            locked.set()
            release.wait(10)
        connections.close_all()

    writer = threading.Thread(target=loop_writing_its_result)
    writer.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        assert ClaimHeartbeat.renew([busy.id, free.id]) == 1  # the free one; the busy one skipped
        assert time.monotonic() - started < 2
    finally:
        release.set()
        writer.join()
