"""SUBMAIL paths: applying status reports in bulk, and sending through the fake server.

    make bench BENCH=submail
    make bench BENCH=submail BENCH_ARGS="--reports=20000 --messages=2000"

1. 100,000 delivery reports applied to 100,000 sent logs with `reports_apply` (bulk,
   forward-only; the median of three sets) against a baseline loop that loads each log and
   `save()`s it, on a fourth set of 100,000 logs in the same run.
2. 10,000 SMS drained by one `celery worker` process with default settings (multisend chunks
   of 50, DISPATCH_THREADS loops) through the fake SUBMAIL server in this process (the median
   of three fresh batches), against the same with one HTTP call per message (chunk size 1,
   sms/send).
3. Scale-out: with the fake answering each call after 50 ms, the same 10,000 SMS drained by
   `celery worker` processes of one loop each, one against four, counting duplicates at the fake.
"""

import argparse
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.common import (
    MEDIAN_DRAIN_PREFIXES,
    bench_sender,
    drain_in_workers,
    median_drain,
    print_table,
    send_rows,
    settle_log_table,
    setup_django,
)

setup_django()

from django.db import connection

from communication.models import CommunicationLog
from communication.services import reports_apply
from providers.base import StatusReport
from tests.conftest import SUBMAIL_APPID, SUBMAIL_APPKEY
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


def bench_reports(user, count: int) -> list[list]:
    """The bulk path is timed on three sets of logs and its median taken: a run lasts seconds,
    and one slow spell of the shared machine moved a single run by half; the per-row loop
    lasts minutes, which averages such spells out. Every set is seeded before anything is
    timed, so both paths work on the same table."""
    at = datetime.now(UTC)
    bulk_sets = ["b", "c", "d"]
    for prefix in [*bulk_sets, "p"]:
        seed_sent_logs(user, count, prefix)
    bulk_runs = []
    for prefix in bulk_sets:
        settle_log_table()
        # Carrier report times differ per message, as in real sms/log pages.
        reports = [
            StatusReport(f"{prefix}-{i}", "delivered", at=at - timedelta(seconds=i % 3600))
            for i in range(1, count + 1)
        ]
        started = time.perf_counter()
        result = reports_apply(reports)
        bulk_runs.append(time.perf_counter() - started)
        assert result.applied == count, result
    bulk = statistics.median(bulk_runs)

    settle_log_table()
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
        [
            f"apply {count:,} reports: bulk (reports_apply), median of "
            + ", ".join(f"{seconds:.2f}" for seconds in bulk_runs),
            f"{bulk:.2f} s",
            f"{count / bulk:,.0f} reports/s",
        ],
        [
            f"apply {count:,} reports: per-row get + save()",
            f"{per_row:.2f} s",
            f"{count / per_row:,.0f} reports/s",
        ],
        ["speed-up", f"{per_row / bulk:.1f}x", "target ≥ 30x"],
    ]


def submail_env(fake, **extra) -> dict:
    return {
        "SMS_PROVIDER": "submail", "SUBMAIL_APPID": SUBMAIL_APPID, "SUBMAIL_APPKEY": SUBMAIL_APPKEY,
        "SUBMAIL_BASE_URL": fake.url, "SUBMAIL_SIGN_TYPE": "md5", "SUBMAIL_SIGNATURE": "【Bench】", **extra,
    }  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    user = bench_sender()

    rows = bench_reports(user, args.reports)

    fake = FakeSubmail({SUBMAIL_APPID: SUBMAIL_APPKEY}).start()
    n = args.messages
    batched, batched_runs = median_drain(user, n, "bat_batched", provider="submail", env=submail_env(fake))
    calls_batched = fake.calls("sms/multisend") // len(MEDIAN_DRAIN_PREFIXES)
    single = drain_in_workers(
        user,
        n,
        "bat_single",
        provider="submail",
        env=submail_env(fake, SUBMAIL_CHUNK_SIZE=1),
        prefix="+86137",
    )
    fake.messages.clear()
    fake.faults.slow, fake.faults.slow_seconds = 1.0, 0.05  # every answer 50 ms late
    slow = submail_env(fake, DISPATCH_THREADS=1)  # one loop per process: what processes add
    one = drain_in_workers(user, n, "bat_one", provider="submail", env=slow, prefix="+86136")
    four = drain_in_workers(user, n, "bat_four", provider="submail", env=slow, processes=4, prefix="+86135")
    fake.stop()
    received = Counter(to for to, _ in fake.deliveries())
    duplicates = sum(count - 1 for count in received.values())
    assert len(received) == 2 * n
    rows += send_rows(
        n,
        batched,
        single,
        f"multisend ×50 ({calls_batched} calls), 1 worker, median of {batched_runs}",
        "1 HTTP call each, 1 worker",
    )
    rows[-1][-1] = "target ≥ 20x and ≥ 5,000 msg/s"
    rows += [
        [f"send {n:,} SMS, gateway 50 ms, 1 worker process, 1 loop", f"{one:.2f} s", f"{n / one:,.0f} messages/s"],
        [f"send {n:,} SMS, gateway 50 ms, 4 worker processes, 1 loop each", f"{four:.2f} s", f"{n / four:,.0f} messages/s"],
        ["scale-out", f"{one / four:.1f}x", f"target ≥ 3x; {duplicates} duplicates"],
    ]  # fmt: skip
    print("\nSUBMAIL paths, PostgreSQL + Redis + fake SUBMAIL on 127.0.0.1")
    print_table(["measure", "time", "rate"], rows)


if __name__ == "__main__":
    main()
