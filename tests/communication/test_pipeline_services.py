"""The status rule applied in bulk, and dispatch outcomes: sent, refused, retry, unknown."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from communication.models import CommunicationLog, UnstartedCall
from communication.services import StatusUpdate, dispatch_pending, logs_apply_status, sweep_pending
from communication.services import dispatch as dispatch_module
from communication.services import status as status_services
from providers.base import OUTCOME_UNKNOWN, ProviderError, SendResult
from tests.factories import LogFactory


@pytest.fixture(params=["native", "portable"])
def executor(request, monkeypatch):
    """Run the status-rule tests through both UPDATE executors: PostgreSQL's JSON rows, and the
    portable CASE form the embedded SQLite run uses."""
    if request.param == "portable":
        monkeypatch.setattr(status_services, "_executor", lambda: status_services._update_with_case)
    return request.param


def _status(log):
    log.refresh_from_db()
    return log.status


def test_forward_moves_apply_and_backward_moves_are_ignored(alice, executor):
    pending, sent, delivered, failed = (
        LogFactory(user=alice, status=s) for s in ("pending", "sent", "delivered", "failed")
    )
    changed = logs_apply_status(
        [StatusUpdate(log.id, "sent") for log in (pending, sent, delivered, failed)]
        + [StatusUpdate(failed.id, "delivered"), StatusUpdate(delivered.id, "failed", error="late drop")]
    )
    assert changed == 1
    assert [_status(log) for log in (pending, sent, delivered, failed)] == [
        "sent",
        "sent",
        "delivered",
        "failed",
    ]
    assert delivered.error is None


def test_per_row_values_are_applied_in_one_update_per_status(alice, executor, django_assert_num_queries):
    logs = [LogFactory(user=alice) for _ in range(3)]
    when = timezone.now() - timedelta(minutes=5)
    with django_assert_num_queries(2):
        logs_apply_status(
            [
                StatusUpdate(log.id, "sent", provider_message_id=f"id-{i}", at=when)
                for i, log in enumerate(logs[:2])
            ]
            + [StatusUpdate(logs[2].id, "failed", error="bad number", response="x" * 5000)]
        )
    for i, log in enumerate(logs[:2]):
        log.refresh_from_db()
        assert (log.status, log.provider_message_id, log.sent_at) == ("sent", f"id-{i}", when)
    logs[2].refresh_from_db()
    assert logs[2].error == "bad number" and len(logs[2].response.encode()) <= 2048


def test_text_values_arrive_as_written(alice, executor):
    """Values travel to PostgreSQL inside a JSON document: quotes, backslashes, line breaks,
    Chinese and characters beyond the BMP come out as they went in."""
    log = LogFactory(user=alice)
    error = '余额不足 "quoted" \\ back\\slash\nline 2 \u2028 😀'
    logs_apply_status([StatusUpdate(log.id, "failed", error=error, response='{"msg": "失败"}')])
    log.refresh_from_db()
    assert (log.status, log.error, log.response) == ("failed", error, '{"msg": "失败"}')


def test_updates_can_match_on_provider_message_id(alice, executor):
    log = LogFactory(user=alice, status="sent", provider_message_id="send-1")
    assert logs_apply_status([StatusUpdate("send-1", "delivered")], match_field="provider_message_id") == 1
    log.refresh_from_db()
    assert log.status == "delivered" and log.delivered_at is not None


def test_leaving_pending_erases_the_send_payload(alice, executor):
    log = LogFactory(user=alice, send_payload={"body": "secret 123456"})
    logs_apply_status([StatusUpdate(log.id, "sent")])
    log.refresh_from_db()
    assert log.send_payload is None


@pytest.fixture
def pending_logs(alice, recording_provider):
    def make(count):
        return [
            LogFactory(user=alice, provider="recording", batch_id="bat_T", recipient=f"+861380013{i:04d}")
            for i in range(count)
        ]

    return make


def test_dispatch_sends_in_chunks_no_larger_than_the_provider_allows(
    pending_logs, recording_provider, settings
):
    settings.DISPATCH_CHUNK_SIZE = 120
    pending_logs(130)
    report = dispatch_pending(batch_id="bat_T")
    assert report.sent == 130 and max(recording_provider.calls) <= 50
    assert set(CommunicationLog.objects.values_list("status", flat=True)) == {"sent"}
    assert set(CommunicationLog.objects.values_list("attempts", flat=True)) == {1}


def test_the_queries_of_a_chunk_do_not_grow_with_its_logs(pending_logs, recording_provider, settings):
    """A chunk costs the same statements whatever its size: nothing is read per log while
    sending it (a relation or a deferred field reached per message would be one query each)."""
    settings.DISPATCH_CHUNK_SIZE = 50

    def queries_to_send(count: int) -> int:
        pending_logs(count)
        with CaptureQueriesContext(connection) as queries:
            assert dispatch_pending(batch_id="bat_T").sent == count
        return len(queries)

    assert queries_to_send(2) == queries_to_send(40)


def test_per_message_refusal_fails_only_that_message(pending_logs, recording_provider):
    logs = pending_logs(3)
    recording_provider.behaviour = lambda m: (
        SendResult.failed("Number is blocklisted") if m.log_id == logs[1].id else SendResult.sent("ok")
    )
    dispatch_pending(batch_id="bat_T")
    assert [_status(log) for log in logs] == ["sent", "failed", "sent"]
    assert logs[1].error == "Number is blocklisted"


def test_unreachable_provider_releases_the_claim_for_a_later_retry(pending_logs, recording_provider):
    logs = pending_logs(2)
    recording_provider.behaviour = ProviderError("Connection refused", permanent=False)
    before = timezone.now()
    report = dispatch_pending(batch_id="bat_T")
    assert report.retry == 2 and report.sent == 0
    for log in logs:
        log.refresh_from_db()
        assert (log.status, log.claimed_at, log.attempts) == ("pending", None, 1)
        # due again after the first step of the schedule (30 s), give or take the jitter
        assert timedelta(seconds=23) < log.next_attempt_at - before < timedelta(seconds=37)
    assert report.next_due_at == min(log.next_attempt_at for log in logs)
    recording_provider.behaviour = None
    assert dispatch_pending(batch_id="bat_T").sent == 0  # not due yet: nobody hammers the provider
    _time_passes()
    assert dispatch_pending(batch_id="bat_T").sent == 2
    assert set(CommunicationLog.objects.values_list("attempts", flat=True)) == {2}


def _time_passes():
    CommunicationLog.objects.filter(next_attempt_at__isnull=False).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_retries_follow_the_schedule_then_give_up_saying_for_how_long(
    pending_logs, recording_provider, settings
):
    settings.DISPATCH_RETRY_SCHEDULE = "1m,30m"
    (log,) = pending_logs(1)
    recording_provider.behaviour = ProviderError("Connection refused", permanent=False)
    for expected_attempts in (1, 2):
        dispatch_pending(batch_id="bat_T")
        log.refresh_from_db()
        assert (log.status, log.attempts) == ("pending", expected_attempts)
        _time_passes()
    dispatch_pending(batch_id="bat_T")
    log.refresh_from_db()
    assert log.status == "failed" and log.attempts == 3
    assert log.error.startswith("Gave up after 3 attempts over about 31 minutes: Connection refused")


def test_each_provider_call_carries_its_own_reference_stored_before_the_call(
    pending_logs, recording_provider, settings
):
    """A chunk of 120 goes out as calls of 50, 50 and 20: three references, each on its
    messages before they were sent (so an unknown outcome can be looked up), one attempt each."""
    settings.DISPATCH_CHUNK_SIZE = 120
    pending_logs(120)
    stored_before_call = []
    recording_provider.behaviour = lambda m: (
        stored_before_call.append(CommunicationLog.objects.get(id=m.log_id).provider_ref == m.reference)
        or SendResult.sent(f"rec-{m.log_id}")
    )
    dispatch_pending(batch_id="bat_T")
    assert all(stored_before_call) and len(stored_before_call) == 120
    references = {m.reference for m in recording_provider.received}
    assert len(references) == 3 and "" not in references
    assert set(CommunicationLog.objects.values_list("attempts", flat=True)) == {1}


def _hand_over_times_seen_by_calls(recording_provider) -> list[set]:
    """Per provider call, the hand-over times its messages had in the database when sent."""
    seen = []

    def behaviour(message):
        handed_at = CommunicationLog.objects.get(id=message.log_id).claimed_at
        if not seen or seen[-1][0] != message.reference:
            seen.append((message.reference, set()))
        seen[-1][1].add(handed_at)
        return SendResult.sent(f"rec-{message.log_id}")

    recording_provider.behaviour = behaviour
    return seen


def test_calls_that_follow_each_other_quickly_keep_the_claims_hand_over_time(
    pending_logs, recording_provider, settings
):
    """The claim stores every call's reference and hand-over time in one UPDATE; a later call
    of the chunk writes nothing more before it goes out."""
    settings.DISPATCH_CHUNK_SIZE = 120
    pending_logs(120)
    seen = _hand_over_times_seen_by_calls(recording_provider)
    dispatch_pending(batch_id="bat_T")
    assert [len(times) for _, times in seen] == [1, 1, 1]
    assert len(set.union(*(times for _, times in seen))) == 1
    assert not UnstartedCall.objects.exists()  # each later call took its row off as it started


def test_a_call_after_a_slow_one_stores_its_own_hand_over_time(
    pending_logs, recording_provider, settings, monkeypatch
):
    """Reconciliation matches the gateway's records against the hand-over time, so a call
    claimed longer ago than HAND_OVER_STALE (its chunk's earlier calls were slow) stores
    when it really starts."""
    monkeypatch.setattr(dispatch_module, "HAND_OVER_STALE", timedelta(milliseconds=200))
    settings.DISPATCH_CHUNK_SIZE = 120
    pending_logs(120)
    seen = _hand_over_times_seen_by_calls(recording_provider)
    record = recording_provider.behaviour

    def first_call_slow(message):
        if len(seen) == 0:
            time.sleep(0.25)
        return record(message)

    recording_provider.behaviour = first_call_slow
    dispatch_pending(batch_id="bat_T")
    ((first,), (second,), (third,)) = (times for _, times in seen)
    assert second - first >= timedelta(milliseconds=250) and third >= second


def test_a_message_waiting_for_its_retry_is_not_claimed_so_no_attempt_is_counted(
    pending_logs, recording_provider
):
    (log,) = pending_logs(1)
    CommunicationLog.objects.update(attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=1))
    for _ in range(4):  # the batch's other tasks
        assert dispatch_pending(batch_id="bat_T").sent == 0
    log.refresh_from_db()
    assert log.attempts == 1 and recording_provider.calls == []


def test_the_default_schedule_spans_more_than_half_an_hour(settings):
    from communication.services.dispatch import max_attempts, retry_delays

    assert sum(retry_delays()) >= 30 * 60 and max_attempts() == len(retry_delays()) + 1


def test_a_task_out_of_time_stops_between_chunks(pending_logs, recording_provider, settings):
    settings.DISPATCH_CHUNK_SIZE = 2
    pending_logs(5)
    report = dispatch_pending(batch_id="bat_T", time_budget=0)
    assert report.out_of_time and report.sent == 2
    assert CommunicationLog.objects.filter(status="pending", claimed_at__isnull=True).count() == 3


def test_answers_are_recorded_once_the_database_is_back(
    pending_logs, recording_provider, settings, monkeypatch
):
    """The provider answered; the database is restarting: retry the recording, never the send."""
    from django.db import OperationalError

    from communication.services import dispatch

    settings.DISPATCH_RECORD_RETRY_DELAYS = [0, 0, 0]
    failures = iter([OperationalError("server closed the connection"), OperationalError("starting up")])
    real_apply = dispatch.logs_apply_status

    def flaky(updates):
        if (error := next(failures, None)) is not None:
            raise error
        return real_apply(updates)

    monkeypatch.setattr(dispatch, "logs_apply_status", flaky)
    logs = pending_logs(2)
    dispatch_pending(batch_id="bat_T")
    assert [_status(log) for log in logs] == ["sent", "sent"] and recording_provider.calls == [2]


def test_recording_gives_up_after_its_bounded_retries(
    pending_logs, recording_provider, settings, monkeypatch
):
    from django.db import OperationalError

    from communication.services import dispatch

    settings.DISPATCH_RECORD_RETRY_DELAYS = [0, 0]

    def down(updates):
        raise OperationalError("still down")

    monkeypatch.setattr(dispatch, "logs_apply_status", down)
    pending_logs(1)
    with pytest.raises(OperationalError):
        dispatch_pending(batch_id="bat_T")
    # The claim stays: the sweeper will treat it as a worker that stopped mid-send.
    assert CommunicationLog.objects.get().claimed_at is not None


def test_permanent_provider_error_fails_the_whole_chunk(pending_logs, recording_provider):
    logs = pending_logs(2)
    recording_provider.behaviour = ProviderError("Invalid appkey", permanent=True)
    dispatch_pending(batch_id="bat_T")
    assert {_status(log) for log in logs} == {"failed"} and logs[0].error == "Invalid appkey"


def test_ambiguous_outcome_is_failed_and_never_resent(pending_logs, recording_provider):
    logs = pending_logs(2)
    recording_provider.behaviour = ProviderError(
        OUTCOME_UNKNOWN.format(reason="read timeout"), permanent=False, outcome_unknown=True
    )
    dispatch_pending(batch_id="bat_T")
    recording_provider.behaviour = None
    assert dispatch_pending(batch_id="bat_T").sent == 0
    assert {_status(log) for log in logs} == {"failed"} and "Outcome unknown" in logs[0].error


def test_a_provider_bug_fails_the_chunk_as_outcome_unknown(pending_logs, recording_provider):
    (log,) = pending_logs(1)

    def explode(message):
        raise KeyError("oops")

    recording_provider.behaviour = explode
    dispatch_pending(batch_id="bat_T")
    assert _status(log) == "failed" and "Outcome unknown" in log.error


def test_logs_claimed_by_another_worker_are_skipped(pending_logs, recording_provider):
    logs = pending_logs(2)
    CommunicationLog.objects.filter(id=logs[0].id).update(claimed_at=timezone.now())
    assert dispatch_pending(batch_id="bat_T").sent == 1
    assert _status(logs[0]) == "pending"


def test_sweeper_fails_logs_whose_worker_vanished_mid_send(pending_logs, recording_provider, settings):
    stale, fresh = pending_logs(2)
    long_ago = timezone.now() - timedelta(seconds=settings.STALE_CLAIM_SECONDS + 1)
    CommunicationLog.objects.filter(id=stale.id).update(claimed_at=long_ago, updated_at=long_ago)
    CommunicationLog.objects.filter(id=fresh.id).update(claimed_at=timezone.now())
    report = sweep_pending()
    assert report.abandoned == 1
    assert _status(stale) == "failed" and "worker stopped" in stale.error
    assert _status(fresh) == "pending"
    assert recording_provider.received == []


def test_sweeper_leaves_young_pending_logs_alone(pending_logs, recording_provider):
    pending_logs(1)
    assert sweep_pending().requeued_batches == 0


def test_a_value_given_for_some_rows_only_leaves_the_others_alone(alice, executor):
    with_fee, without_fee = LogFactory(user=alice), LogFactory(user=alice, fee=7)
    logs_apply_status([StatusUpdate(with_fee.id, "sent", fee=1), StatusUpdate(without_fee.id, "sent")])
    with_fee.refresh_from_db()
    without_fee.refresh_from_db()
    assert (with_fee.fee, without_fee.fee) == (1, 7)


def test_chunks_larger_than_one_statement_are_all_applied(alice, executor, monkeypatch):
    monkeypatch.setattr(status_services, "UPDATE_CHUNK", 3)
    logs = [LogFactory(user=alice, status="sent", provider_message_id=f"m-{i}") for i in range(7)]
    when = timezone.now()
    updates = [StatusUpdate(f"m-{i}", "delivered", at=when - timedelta(seconds=i)) for i in range(7)]
    assert logs_apply_status(updates, match_field="provider_message_id") == 7
    for i, log in enumerate(logs):
        log.refresh_from_db()
        assert (log.status, log.delivered_at) == ("delivered", when - timedelta(seconds=i))


def test_a_provider_removed_from_settings_hands_its_logs_to_the_channels_route(alice, settings):
    (log,) = [LogFactory(user=alice, provider="retired-provider", batch_id="bat_R")]
    report = dispatch_pending(batch_id="bat_R")
    assert (report.failed_over, report.sent) == (1, 1) and _status(log) == "sent"
    assert log.provider == settings.CHANNEL_PROVIDERS["sms"]
    (attempt,) = log.delivery_attempts.all()
    assert (attempt.provider, attempt.next_provider) == ("retired-provider", log.provider)
    assert "retired-provider" in attempt.error


def test_with_no_provider_left_that_can_send_it_the_log_fails(alice, settings, fake_aliyun):
    settings.CHANNEL_PROVIDERS, settings.FAILOVER_PROVIDERS = {"sms": "aliyun"}, {"sms": []}
    (log,) = [LogFactory(user=alice, provider="retired-provider", batch_id="bat_R")]  # free text
    report = dispatch_pending(batch_id="bat_R")
    assert report.failed == 1 and _status(log) == "failed" and "retired-provider" in log.error


def test_the_task_wakes_up_when_the_next_retry_is_due(pending_logs, recording_provider, monkeypatch):
    from communication import services, tasks

    calls = []
    monkeypatch.setattr(services, "enqueue_dispatch", lambda batch_id, pending, eta=None: calls.append(eta))
    pending_logs(1)
    recording_provider.behaviour = ProviderError("Connection refused", permanent=False)
    tasks.dispatch_batch("bat_T")  # a direct call runs as a worker would, not inline
    (eta,) = calls
    assert eta == CommunicationLog.objects.get().next_attempt_at


def test_the_task_hands_over_when_out_of_time(pending_logs, recording_provider, monkeypatch, settings):
    from communication import services, tasks

    settings.DISPATCH_TASK_SECONDS, settings.DISPATCH_CHUNK_SIZE = 0, 1
    calls = []
    monkeypatch.setattr(services, "enqueue_dispatch", lambda batch_id, pending, eta=None: calls.append(eta))
    pending_logs(3)
    tasks.dispatch_batch("bat_T")
    assert calls == [None] and CommunicationLog.objects.filter(status="sent").count() == 1


def test_the_sweeper_requeues_only_batches_with_due_work(alice, monkeypatch):
    from communication.services import dispatch

    enqueued = []
    monkeypatch.setattr(dispatch, "enqueue_dispatch", lambda batch_id, pending: enqueued.append(batch_id))
    old = timezone.now() - timedelta(minutes=5)
    LogFactory(user=alice, batch_id="bat_DUE", created_at=old)
    LogFactory(
        user=alice, batch_id="bat_WAIT", created_at=old, next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    sweep_pending()
    assert enqueued == ["bat_DUE"]


def test_a_claim_not_renewed_for_30_seconds_is_abandoned_but_one_with_a_heartbeat_is_not(alice, settings):
    """Default: 30 s without hand-over or heartbeat (a worker beats every 10 s while it holds
    a claim, however long the provider call takes)."""
    assert (settings.STALE_CLAIM_SECONDS, settings.CLAIM_HEARTBEAT_SECONDS) == (30, 10)
    now = timezone.now()
    long_ago, lately = now - timedelta(seconds=31), now - timedelta(seconds=20)
    dead = LogFactory(user=alice, batch_id="bat_X", claimed_at=long_ago)
    beating = LogFactory(user=alice, batch_id="bat_X", claimed_at=long_ago)
    handed_over = LogFactory(user=alice, batch_id="bat_X", claimed_at=lately)
    CommunicationLog.objects.filter(id__in=[dead.id, handed_over.id]).update(updated_at=long_ago)
    CommunicationLog.objects.filter(id=beating.id).update(updated_at=lately)
    assert sweep_pending().abandoned == 1
    assert (_status(dead), _status(beating), _status(handed_over)) == ("failed", "pending", "pending")


def test_the_first_update_of_a_log_to_a_status_is_the_one_applied(alice, executor, monkeypatch):
    """A second report of the same status could only be a no-op (forward-only); applying the
    first wherever the two fall (one chunk or two) keeps every key in one chunk."""
    monkeypatch.setattr(status_services, "UPDATE_CHUNK", 2)
    first_log, other = (LogFactory(user=alice, status="sent", provider_message_id=m) for m in ("m-1", "m-2"))
    when = timezone.now()
    updates = [
        StatusUpdate("m-1", "delivered", at=when - timedelta(minutes=2)),
        StatusUpdate("m-1", "delivered", at=when - timedelta(minutes=1)),
        StatusUpdate("m-2", "delivered", at=when),
        StatusUpdate("m-1", "delivered", at=when),
    ]
    assert logs_apply_status(updates, match_field="provider_message_id") == 2
    first_log.refresh_from_db()
    other.refresh_from_db()
    assert (first_log.delivered_at, other.delivered_at) == (when - timedelta(minutes=2), when)


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_a_change_of_several_chunks_is_applied_on_connections_side_by_side(alice, monkeypatch, settings):
    monkeypatch.setattr(status_services, "UPDATE_CHUNK", 2)
    settings.STATUS_UPDATE_THREADS = 2
    applied_in = []
    update_with_json = status_services._update_with_json

    def recording(*args, **kwargs):
        applied_in.append(threading.current_thread().name)
        return update_with_json(*args, **kwargs)

    monkeypatch.setattr(status_services, "_update_with_json", recording)
    logs = [LogFactory(user=alice, status="sent", provider_message_id=f"m-{i}") for i in range(9)]
    updates = [StatusUpdate(f"m-{i}", "delivered") for i in range(9)]
    assert logs_apply_status(updates, match_field="provider_message_id") == 9
    assert {_status(log) for log in logs} == {"delivered"}
    assert len(applied_in) == 5 and len(set(applied_in)) == 2
    assert threading.current_thread().name not in applied_in


def _stale_claims(settings):
    long_ago = timezone.now() - timedelta(seconds=settings.STALE_CLAIM_SECONDS + 1)
    CommunicationLog.objects.filter(claimed_at__isnull=False).update(claimed_at=long_ago, updated_at=long_ago)


@pytest.fixture
def dead_workers_chunk(pending_logs, recording_provider, settings):
    """A worker claimed 120 logs as three calls (50, 50, 20) and died: it made the first call
    or was about to, and never started the other two."""
    settings.DISPATCH_CHUNK_SIZE = 120
    pending_logs(120)
    calls = dispatch_module._claim_chunk(batch_id="bat_T", size=120)
    assert [len(call.logs) for call in calls] == [50, 50, 20]
    return calls


def _ids(*calls):
    return {log.id for call in calls for log in call.logs}


@pytest.fixture
def enqueued(monkeypatch):
    """Batches the sweeper hands to a dispatch task, kept here rather than sent inline."""
    batches = []
    monkeypatch.setattr(
        dispatch_module, "enqueue_dispatch", lambda batch_id, pending: batches.append(batch_id)
    )
    return batches


def test_the_sweeper_sends_again_the_calls_a_dead_worker_never_started(
    dead_workers_chunk, recording_provider, settings, enqueued
):
    first, second, third = dead_workers_chunk
    _stale_claims(settings)
    report = sweep_pending()
    assert (report.released, report.abandoned, enqueued) == (70, 50, ["bat_T"])
    released = CommunicationLog.objects.filter(id__in=_ids(second, third))
    assert set(released.values_list("status", "claimed_at", "provider_ref", "attempts")) == {
        ("pending", None, None, 0)
    }
    # The first call may have reached the provider: never resent (this one cannot be asked).
    first_logs = CommunicationLog.objects.filter(id__in=_ids(first))
    assert set(first_logs.values_list("status", "status_detail")) == {("failed", "unknown")}
    assert dispatch_pending(batch_id="bat_T").sent == 70
    assert sorted(m.log_id for m in recording_provider.received) == sorted(_ids(second, third))
    assert not UnstartedCall.objects.exists()


def test_a_call_its_worker_started_is_never_released(dead_workers_chunk, settings):
    first, second, third = dead_workers_chunk
    assert dispatch_module._start_later_calls([second]) == {second.reference}
    _stale_claims(settings)
    report = sweep_pending()
    assert (report.released, report.abandoned) == (20, 100)
    assert set(
        CommunicationLog.objects.filter(id__in=_ids(first, second)).values_list("status", flat=True)
    ) == {"failed"}


def test_a_worker_thought_dead_skips_the_calls_the_sweeper_released(
    dead_workers_chunk, recording_provider, settings, enqueued
):
    """Its heartbeat stopped for longer than STALE_CLAIM_SECONDS, but it was alive: the
    released calls are not made twice, by it and by whoever claims them next."""
    first, *_ = dead_workers_chunk
    _stale_claims(settings)
    sweep_pending()
    dispatch_module._send_chunk(dead_workers_chunk, dispatch_module.DispatchReport())
    assert recording_provider.calls == [50]
    dispatch_pending(batch_id="bat_T")
    assert recording_provider.calls == [50, 50, 20]
    assert len({m.log_id for m in recording_provider.received}) == 120 == len(recording_provider.received)


def test_the_sweeper_drops_unstarted_call_rows_older_than_a_day(alice):
    """Left only when their logs were settled some other way while claimed."""
    UnstartedCall.objects.create(reference="r-old", planned_at=timezone.now() - timedelta(days=1, minutes=1))
    UnstartedCall.objects.create(reference="r-recent", planned_at=timezone.now() - timedelta(hours=23))
    sweep_pending()
    assert list(UnstartedCall.objects.values_list("reference", flat=True)) == ["r-recent"]


def test_a_call_is_released_whole_when_the_sweep_sees_only_some_of_its_logs(
    dead_workers_chunk, settings, enqueued
):
    """The sweep reads at most `limit` abandoned logs (newest first): here the third call's 20
    and 10 of the second's. Both calls are released whole; the first waits for the next sweep."""
    first, second, third = dead_workers_chunk
    _stale_claims(settings)
    report = sweep_pending(limit=30)
    assert (report.released, report.abandoned, enqueued) == (70, 0, ["bat_T"])
    released = CommunicationLog.objects.filter(id__in=_ids(second, third), claimed_at__isnull=True)
    assert released.count() == 70
    assert sweep_pending().abandoned == 50


@pytest.fixture
def one_message_calls(recording_provider, pending_logs, settings, monkeypatch):
    """A provider taking one message a call (FCM, Web Push, Aliyun's SendSms): 25 calls a chunk."""
    monkeypatch.setattr(recording_provider, "max_batch_size", 1)
    settings.DISPATCH_CHUNK_SIZE = 25
    return pending_logs(25)


def test_later_calls_are_started_ten_messages_at_a_time(one_message_calls, recording_provider):
    with CaptureQueriesContext(connection) as queries:
        assert dispatch_pending(batch_id="bat_T").sent == 25
    starts = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "communication_unstarted_call"')]
    assert len(starts) == 3  # calls 2–11, 12–21, 22–25
    assert len(recording_provider.calls) == 25 and not UnstartedCall.objects.exists()


def test_a_dead_worker_leaves_at_most_the_rest_of_a_group_to_reconciliation(
    one_message_calls, settings, enqueued
):
    calls = dispatch_module._claim_chunk(batch_id="bat_T", size=25)
    taken = dispatch_module._start_later_calls(dispatch_module._group_from(calls, 1))
    assert taken == {call.reference for call in calls[1:11]}
    _stale_claims(settings)  # it died during call 2
    report = sweep_pending()
    assert (report.released, report.abandoned) == (14, 11)
