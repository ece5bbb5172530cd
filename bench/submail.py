"""SUBMAIL paths: applying status reports in bulk, and sending through the fake server.

    make bench BENCH=submail
    make bench BENCH=submail BENCH_ARGS="--reports=20000 --messages=2000"

1. 100,000 delivery reports applied to 100,000 sent logs with `reports_apply` (bulk,
   forward-only) against a baseline loop that loads each log and `save()`s it, on a
   second set of 100,000 logs in the same run.
2. 10,000 SMS drained by one in-process Celery worker through the fake SUBMAIL server
   with multisend chunks of 100, against the same with one HTTP call per message
   (chunk size 1, sms/send).
3. Scale-out: with the fake answering each call after 50 ms, the same 10,000 SMS drained by
   `celery worker` processes, one against four, counting duplicates at the fake.
"""

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.common import drain, migrate, print_table, seed_pending, send_rows, setup_django

setup_django()

from django.conf import settings
from django.db import connection

from authms.models import Tenant, User
from communication.models import CommunicationLog
from communication.services import enqueue_dispatch, reports_apply
from providers.base import StatusReport
from tests.conftest import SUBMAIL_APPID, SUBMAIL_APPKEY, celery_config
from tests.fakes.submail_server import FakeSubmail


def seed_sent_logs(user, count: int, prefix: str):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO communication_log (id, tenant_id, user_id, channel, provider, recipient, subject, content,
                status, provider_message_id, attempts, created_at, updated_at, sent_at)
            SELECT %s || lpad(g::text, 25, '0'), %s, %s, 'sms', 'submail', '+86138' || lpad(g::text, 8, '0'),
                   '', 'x', 'sent', %s || g, 1, now(), now(), now()
            FROM generate_series(1, %s) AS g
            """,
            [f"log_{prefix}", user.tenant_id, user.id, f"{prefix}-", count],
        )
        cursor.execute("ANALYZE communication_log")


def bench_reports(user, count: int) -> list[list]:
    at = datetime.now(UTC)
    seed_sent_logs(user, count, "b")
    # Carrier report times differ per message, as in real sms/log pages.
    reports = [
        StatusReport(f"b-{i}", "delivered", at=at - timedelta(seconds=i % 3600)) for i in range(1, count + 1)
    ]
    started = time.perf_counter()
    result = reports_apply(reports)
    bulk = time.perf_counter() - started
    assert result.applied == count, result

    seed_sent_logs(user, count, "p")
    started = time.perf_counter()
    for i in range(1, count + 1):
        log = CommunicationLog.objects.get(provider_message_id=f"p-{i}")
        if log.status in ("pending", "sent"):
            log.status, log.delivered_at = "delivered", at - timedelta(seconds=i % 3600)
            log.save(update_fields=["status", "delivered_at", "updated_at"])
    per_row = time.perf_counter() - started
    assert (
        CommunicationLog.objects.filter(provider_message_id__startswith="p-", status="delivered").count()
        == count
    )
    return [
        [f"apply {count:,} reports: bulk (reports_apply)", f"{bulk:.2f} s", f"{count / bulk:,.0f} reports/s"],
        [
            f"apply {count:,} reports: per-row get + save()",
            f"{per_row:.2f} s",
            f"{count / per_row:,.0f} reports/s",
        ],
        ["speed-up", f"{per_row / bulk:.1f}x", "target ≥ 20x"],
    ]


def drain_with_processes(fake, user, count: int, processes: int, tag: str, prefix: str) -> float:
    """Real worker processes (prefork), as deployed: the rate that more processes buy."""
    seed_pending(user, count, tag, prefix, provider="submail")
    env = {
        **os.environ, "CELERY_TASK_ALWAYS_EAGER": "false", "SMS_PROVIDER": "submail",
        "SUBMAIL_APPID": SUBMAIL_APPID, "SUBMAIL_APPKEY": SUBMAIL_APPKEY, "SUBMAIL_BASE_URL": fake.url,
        "SUBMAIL_SIGN_TYPE": "md5", "SUBMAIL_SIGNATURE": "【Bench】", "DISPATCH_FANOUT": str(processes),
    }  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "authms", "worker", "-l", "WARNING", "-c", str(processes),
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(3)  # the worker's start-up is not what is measured
        settings.DISPATCH_FANOUT = processes
        started = time.perf_counter()
        enqueue_dispatch(tag, count)
        while CommunicationLog.objects.filter(batch_id=tag, status="pending").exists():
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait()
    assert CommunicationLog.objects.filter(batch_id=tag, status="sent").count() == count
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    migrate()
    logging.getLogger("celery").setLevel(logging.WARNING)
    tenant = Tenant.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    user = User.objects.create(tenant=tenant, username=f"bench-{time.time_ns()}", password="!")

    rows = bench_reports(user, args.reports)

    fake = FakeSubmail({SUBMAIL_APPID: SUBMAIL_APPKEY}).start()
    settings.SUBMAIL_APPID, settings.SUBMAIL_APPKEY = SUBMAIL_APPID, SUBMAIL_APPKEY
    settings.SUBMAIL_BASE_URL, settings.SUBMAIL_SIGN_TYPE, settings.SUBMAIL_SIGNATURE = (
        fake.url,
        "md5",
        "【Bench】",
    )
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "submail"}
    settings.DISPATCH_CHUNK_SIZE = 100
    with celery_config(task_always_eager=False, broker_url=os.environ["CELERY_BROKER_URL"]) as app:
        app.control.purge()
        settings.SUBMAIL_CHUNK_SIZE = 100
        batched = drain(app, user, args.messages, "bat_batched", provider="submail")
        settings.SUBMAIL_CHUNK_SIZE = 1
        single = drain(app, user, args.messages, "bat_single", provider="submail", prefix="+86137")
        fake.messages.clear()
        fake.faults.slow, fake.faults.slow_seconds = 1.0, 0.05  # every answer 50 ms late
        one = drain_with_processes(fake, user, args.messages, 1, "bat_one", "+86136")
        four = drain_with_processes(fake, user, args.messages, 4, "bat_four", "+86135")
    fake.stop()
    received = Counter(to for to, _ in fake.deliveries())
    duplicates = sum(count - 1 for count in received.values())
    assert len(received) == 2 * args.messages
    rows += send_rows(
        args.messages, batched, single, "multisend ×100, 1 worker", "1 HTTP call each, 1 worker"
    )
    rows += [
        [f"send {args.messages:,} SMS, gateway 50 ms, 1 worker process", f"{one:.2f} s", f"{args.messages / one:,.0f} messages/s"],
        [f"send {args.messages:,} SMS, gateway 50 ms, 4 worker processes", f"{four:.2f} s", f"{args.messages / four:,.0f} messages/s"],
        ["scale-out", f"{one / four:.1f}x", f"target ≥ 3x; {duplicates} duplicates"],
    ]  # fmt: skip
    print("\nSUBMAIL paths, PostgreSQL + Redis + fake SUBMAIL on 127.0.0.1")
    print_table(["measure", "time", "rate"], rows)


if __name__ == "__main__":
    main()
