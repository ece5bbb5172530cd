"""POST /communication/bulk with 10,000 SMS recipients against a bulk_create floor, then drain.

    make bench BENCH=bulk_send
    make bench BENCH=bulk_send BENCH_ARGS="--recipients=2000 --repeat=3"

1. Request time (to 200, rows committed, dispatch enqueued on the Redis broker) against the
   floor: one `bulk_create` of the same number of equivalent rows in a transaction.
2. Drain: one in-process Celery worker (solo pool) sends the batch through the console
   provider (its per-message log line silenced); messages per second, start to last `sent`.
"""

import argparse
import logging
import statistics
import time

from bench.common import migrate, print_table, setup_django

setup_django()

from celery.contrib.testing.worker import start_worker
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from authms.ids import new_ids
from authms.models import Tenant, User
from communication.models import Batch, CommunicationLog
from tests.conftest import access_token_for, celery_config


def numbers(count: int, offset: int) -> list[str]:
    return [f"+86138{offset + index:08d}" for index in range(count)]


def floor_once(user, count: int, offset: int) -> float:
    now = timezone.now()
    logs = [
        CommunicationLog(
            id=log_id, tenant_id=user.tenant_id, user=user, channel="sms", provider="console",
            recipient=recipient, content="Your order has shipped.", batch_id="bat_floor", created_at=now, updated_at=now,
        )
        for log_id, recipient in zip(new_ids("log", count), numbers(count, offset), strict=True)
    ]  # fmt: skip
    started = time.perf_counter()
    with transaction.atomic():
        CommunicationLog.objects.bulk_create(logs, batch_size=2000)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    migrate()
    logging.getLogger("providers.console").setLevel(logging.WARNING)
    logging.getLogger("celery").setLevel(logging.WARNING)

    tenant = Tenant.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    user = User.objects.create(tenant=tenant, username=f"bench-{time.time_ns()}", password="!")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    import os

    with celery_config(task_always_eager=False, broker_url=os.environ["CELERY_BROKER_URL"]) as app:
        app.control.purge()
        requests, floors, batch_ids = [], [], []
        for run in range(args.repeat):
            body = {
                "channel": "sms",
                "content": "Your order has shipped.",
                "recipients": numbers(args.recipients, run * args.recipients),
            }
            started = time.perf_counter()
            response = client.post("/api/v1/communication/bulk", body, format="json")
            requests.append(time.perf_counter() - started)
            assert response.status_code == 200, response.content[:300]
            batch_ids.append(response.json()["batch_id"])
            floors.append(floor_once(user, args.recipients, 50_000_000 + run * args.recipients))
        committed = CommunicationLog.objects.filter(batch_id__in=batch_ids).count()
        assert committed == args.recipients * args.repeat, committed

        drain_batch = batch_ids[-1]
        CommunicationLog.objects.filter(batch_id__in=batch_ids[:-1]).update(
            status="failed"
        )  # drain one batch only
        app.control.purge()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE communication_log")
        started = time.perf_counter()
        with start_worker(
            app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30
        ):
            from communication.services import enqueue_dispatch

            enqueue_dispatch(drain_batch, args.recipients)
            while CommunicationLog.objects.filter(batch_id=drain_batch, status="pending").exists():
                time.sleep(0.05)
            drained = time.perf_counter() - started
        sent = CommunicationLog.objects.filter(batch_id=drain_batch, status="sent").count()
        assert sent == args.recipients, sent
        assert Batch.objects.get(id=drain_batch).completed_at is not None

    request_ms, floor_ms = statistics.median(requests) * 1000, statistics.median(floors) * 1000
    print(f"\nBulk send, {args.recipients:,} SMS recipients, PostgreSQL, median of {args.repeat}")
    print_table(
        ["measure", "value"],
        [
            ["POST /communication/bulk (to 200, committed)", f"{request_ms:.0f} ms"],
            ["floor: bulk_create of the same rows", f"{floor_ms:.0f} ms"],
            ["request / floor", f"{request_ms / floor_ms:.2f}x"],
            ["drain, 1 worker, console provider", f"{drained:.2f} s"],
            ["throughput", f"{args.recipients / drained:,.0f} messages/s"],
        ],
    )


if __name__ == "__main__":
    main()
