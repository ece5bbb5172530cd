"""A real Celery worker process, killed or stopped mid-batch, against PostgreSQL, Redis and
the fake SUBMAIL: every message ends sent once, or honestly accounted for.

The worker runs as `celery -A authms worker` (prefork) in its own process group, on the
test database; the test process plays the API, beat (sweeper, status sync) and the clock.
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from communication.models import CommunicationLog, PushedReports, UnstartedCall
from communication.services import pushed_reports_keep, sweep_pending
from communication.status_sync import status_sync_tick
from communication.tasks import apply_pushed_reports
from providers.base import StatusReport
from tests.communication.test_status_sync import next_minute
from tests.conftest import SUBMAIL_APPID, SUBMAIL_APPKEY, require_service_url
from tests.e2e.conftest import statuses, wait_until
from tests.e2e.test_submail_pipeline import bulk_sms
from tests.factories import LogFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    """The test database, for the worker processes and for the test's own second connection."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def worker_process(fake_submail, real_broker):
    """Start (and restart) worker processes sharing this test's database and broker."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": require_service_url("CELERY_BROKER_URL"),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "SMS_PROVIDER": "submail",
        "SUBMAIL_APPID": SUBMAIL_APPID,
        "SUBMAIL_APPKEY": SUBMAIL_APPKEY,
        "SUBMAIL_BASE_URL": fake_submail.url,
        "SUBMAIL_SIGN_TYPE": "md5",
        "SUBMAIL_SIGNATURE": "【Acme】",
        "SUBMAIL_CHUNK_SIZE": "10",
        "DISPATCH_CHUNK_SIZE": "10",
    }
    started = []

    def start(*arguments, **settings):
        """`arguments` go to the worker (e.g. -B for an embedded beat), `settings` to its environment."""
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "authms", "worker", "-l", "WARNING", "-c", "2",
             "--without-gossip", "--without-mingle", "--without-heartbeat", *arguments],
            cwd=ROOT, env={**env, **settings}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    connection.close()


def _other_sessions_busy() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state <> 'idle'"
        )
        return cursor.fetchone()[0] > 0


def _sent_twice(fake_submail) -> list[str]:
    return [to for to, count in Counter(to for to, _ in fake_submail.deliveries()).items() if count > 1]


def test_kill_9_mid_batch_ends_with_every_message_sent_once(sender, fake_submail, worker_process, settings):
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.5  # each call stored, then slow
    worker = worker_process(DISPATCH_CHUNK_SIZE="30")  # three calls a chunk: the kill finds some not started
    batch_id = bulk_sms(sender, 200)
    logs = CommunicationLog.objects.filter(batch_id=batch_id)
    wait_until(lambda: logs.filter(status="sent").count() >= 20, timeout=60)
    os.killpg(worker.pid, signal.SIGKILL)  # mid-call: SUBMAIL stored messages we never heard about
    worker.wait()
    # A statement the worker had sent (a claim) still runs to its end in PostgreSQL.
    wait_until(lambda: not _other_sessions_busy(), timeout=10)
    in_flight = logs.filter(status="pending", claimed_at__isnull=False)
    unstarted = in_flight.filter(provider_ref__in=UnstartedCall.objects.values("reference")).count()
    started = in_flight.count() - unstarted
    print(f"in flight at the kill: {started} in calls made or starting, {unstarted} in calls not started")
    assert started > 0

    # Rather than wait STALE_CLAIM_SECONDS (90 s) and SWEEP_PENDING_AFTER_SECONDS (60 s):
    settings.STALE_CLAIM_SECONDS = settings.SWEEP_PENDING_AFTER_SECONDS = 1
    time.sleep(1.5)
    report = sweep_pending()
    # Calls the worker never started go back to the queue; the others may have reached SUBMAIL.
    assert (report.abandoned, report.released) == (started, unstarted)
    assert logs.filter(status_detail="reconciling").count() == started

    worker_process()  # the restart; the sweep above re-enqueued the batch for it
    wait_until(
        lambda: not logs.filter(status="pending").exclude(status_detail="reconciling").exists(), timeout=120
    )
    next_minute(fake_submail)
    status_sync_tick(provider_name="submail")  # SUBMAIL's records settle what it stored before the kill
    # What it never received (killed between the claim and the request) is settled once a
    # window reaching 10 minutes past the hand-over has been read: move the clock on.
    unsettled = logs.filter(status_detail="reconciling")
    unsettled.update(
        claimed_at=timezone.now() - timedelta(minutes=15), updated_at=timezone.now() - timedelta(minutes=15)
    )
    next_minute(fake_submail)
    status_sync_tick(provider_name="submail")  # a new window: read whole, no record of them → queued again
    sweep_pending()
    wait_until(lambda: not logs.filter(status="pending").exists(), timeout=60)
    assert Counter(statuses(batch_id)) == {"sent": 200}
    assert _sent_twice(fake_submail) == []
    assert set(logs.values_list("provider_message_id", flat=True)) == set(fake_submail.messages)


def test_sigterm_stops_the_worker_between_chunks_within_seconds(sender, fake_submail, worker_process):
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 1.0
    worker = worker_process()
    # Chunks of 10, 2 processes × 4 loops (DISPATCH_THREADS), 1 s a call: ~19 s of sending,
    # far longer than a task's 5 s budget.
    batch_id = bulk_sms(sender, 1500)
    logs = CommunicationLog.objects.filter(batch_id=batch_id)
    wait_until(lambda: logs.filter(status="sent").count() >= 20, timeout=60)
    asked = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)  # a deploy: warm shutdown
    worker.wait(timeout=30)
    stopped_after = time.monotonic() - asked
    print(f"worker stopped {stopped_after:.1f} s after SIGTERM")
    assert stopped_after < 10, stopped_after
    # Nothing half-done: every log is sent, or pending and unclaimed for the next worker.
    assert not logs.filter(status="pending", claimed_at__isnull=False).exists()
    assert not logs.filter(status="failed").exists()
    assert logs.filter(status="pending").exists()

    worker_process()
    wait_until(lambda: Counter(statuses(batch_id)) == {"sent": 1500}, timeout=120)
    assert _sent_twice(fake_submail) == []


def _pg_ctl(*args):
    pg_ctl, data = os.environ.get("SERVICES_PG_CTL"), os.environ.get("SERVICES_PG_DATA")
    if not (pg_ctl and data):
        pytest.fail("SERVICES_PG_CTL is not set: run the suite through `make test` (.ci/with-services).")
    command = [pg_ctl, "-D", data, "-w", *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=60)


def test_a_database_restart_mid_batch_loses_and_mislabels_nothing(
    sender, fake_submail, worker_process, settings
):
    """The gateway's answers are in the worker's memory while PostgreSQL is away: recording is
    retried until it is back, never the send."""
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.3
    worker_process()
    batch_id = bulk_sms(sender, 300)
    logs = CommunicationLog.objects.filter(batch_id=batch_id)
    wait_until(lambda: logs.filter(status="sent").count() >= 30, timeout=60)
    connection.close()
    _pg_ctl("-m", "fast", "stop")
    time.sleep(5)
    data = os.environ["SERVICES_PG_DATA"]
    _pg_ctl("-l", f"{data}/server.log", "-o", os.environ["SERVICES_PG_OPTIONS"], "start")
    # The test plays beat: tasks that died on the lost connection are re-enqueued by the sweeper.
    settings.SWEEP_PENDING_AFTER_SECONDS = 1

    def settled():
        sweep_pending()
        return not logs.filter(status="pending").exists()

    wait_until(settled, timeout=120, interval=1)
    assert Counter(statuses(batch_id)) == {"sent": 300}
    assert _sent_twice(fake_submail) == []
    assert set(logs.values_list("provider_message_id", flat=True)) == set(fake_submail.messages)


def test_a_scheduled_bulk_of_10000_leaves_within_60_s_of_send_at_with_a_worker_and_beat(
    sender, fake_submail, worker_process, tmp_path
):
    """The acceptance of delivery controls: 10,000 SMS scheduled ahead, a worker process with its
    beat (the sweeper) and production-sized chunks; nothing leaves early, all within 60 s, once."""
    worker_process(
        "-B", "-s", str(tmp_path / "beat-schedule"), SUBMAIL_CHUNK_SIZE="50", DISPATCH_CHUNK_SIZE="500"
    )
    send_at = (timezone.now() + timedelta(seconds=12)).replace(microsecond=0)
    recipients = [f"+86136{index:08d}" for index in range(10_000)]
    response = sender.post(
        "/api/v1/communication/bulk",
        {"channel": "sms", "content": "Sale", "recipients": recipients, "send_at": send_at.isoformat()},
        format="json", HTTP_PREFER="return=minimal",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    batch_id = response.json()["batch_id"]
    wait_until(lambda: timezone.now() >= send_at - timedelta(seconds=1), timeout=15)
    assert not fake_submail.deliveries() and set(statuses(batch_id)) == {"pending"}
    wait_until(lambda: set(statuses(batch_id)) == {"sent"}, timeout=90)
    sent_at = CommunicationLog.objects.filter(batch_id=batch_id).values_list("sent_at", flat=True)
    assert min(sent_at) >= send_at and (max(sent_at) - send_at).total_seconds() < 60
    assert len(fake_submail.deliveries()) == 10_000 and not _sent_twice(fake_submail)


def _blocked_backends() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        return [row[0] for row in cursor.fetchall()]


def test_pushed_receipts_a_killed_worker_process_was_applying_are_applied_by_the_sweep(
    sender, fake_submail, worker_process, settings
):
    """Receipts are applied on a worker after the provider got its answer. A worker process
    that dies applying them takes its task along (acknowledged when it started), not the
    receipts: the request kept them, and the sweep applies them."""
    log = LogFactory(
        user=UserFactory(), provider="aliyun", status="sent", provider_message_id="rOUT/13900000000"
    )
    report = StatusReport(log.provider_message_id, "delivered", at=timezone.now())
    kept_id = pushed_reports_keep(provider="aliyun", reports=[report])
    holder = psycopg.connect(_database_url())
    try:
        holder.execute("SELECT id FROM communication_log WHERE id = %s FOR UPDATE", [log.id])
        worker = worker_process()
        apply_pushed_reports.delay(kept_id)  # as the receipts view does
        wait_until(lambda: len(_blocked_backends()) == 1, timeout=30)  # applying, held on our lock
        for pid in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split():
            os.kill(int(pid), signal.SIGKILL)  # the pool's processes; the main process lives on
        # The dead process's statement never ran: end its backend before releasing the row.
        for backend in _blocked_backends():
            holder.execute("SELECT pg_terminate_backend(%s)", [backend])
    finally:
        holder.rollback()
        holder.close()
    settings.PUSHED_REPORTS_SWEEP_AFTER_SECONDS = 0  # rather than wait a minute

    def applied() -> bool:
        sweep_pending()
        return CommunicationLog.objects.get(id=log.id).status == "delivered"

    wait_until(applied, timeout=30, interval=0.5)
    assert not PushedReports.objects.exists()
