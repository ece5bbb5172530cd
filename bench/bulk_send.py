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

from bench.common import migrate, print_table, settle_log_table, setup_django

setup_django()

from celery.contrib.testing.worker import start_worker
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from authms.ids import new_ids
from authms.models import Tenant, User
from communication.models import Batch, CommunicationLog, Preference, Price
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


PREFERENCE_USERS_PER_RUN = 400


def sender(tenant) -> tuple[User, APIClient]:
    user = User.objects.create(tenant=tenant, username=f"bench-{time.time_ns()}", password="!")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return user, client


def controlled_tenant(count: int, repeat: int) -> Tenant:
    """A tenant with every delivery control on: sending and spend caps (never reached, so each
    bulk takes the locks and the estimate), quiet hours (a window that is not now, so the users'
    zones are read but nobody waits), and 400 of each bulk's numbers belonging to users, half of
    whom switched marketing SMS off. Frequency caps are on for every tenant."""
    hour = (timezone.now().hour + 2) % 24
    tenant = Tenant.objects.create(
        name="Bench controls", slug=f"bench-controls-{time.time_ns()}",
        send_caps={"sms": {"day": 10**9, "month": 10**9}, "spend": {"day": 10**6, "month": 10**7}},
        time_zone="UTC", quiet_hours=f"{hour:02d}:00-{(hour + 1) % 24:02d}:00",
    )  # fmt: skip
    Price.objects.get_or_create(
        provider="console", channel="sms", country="CN", defaults={"unit_price": "0.045"}
    )
    users = [
        User(tenant=tenant, username=f"pref-{time.time_ns()}-{run}-{index}", password="!", phone=phone)
        for run in range(repeat)
        for index, phone in enumerate(numbers(PREFERENCE_USERS_PER_RUN, run * count))
    ]
    User.objects.bulk_create(users)
    Preference.objects.bulk_create(
        Preference(tenant=tenant, user=user, category="marketing", channel="sms", enabled=False)
        for user in users[::2]
    )
    return tenant


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    migrate()
    logging.getLogger("providers.console").setLevel(logging.WARNING)
    logging.getLogger("celery").setLevel(logging.WARNING)

    user, client = sender(Tenant.objects.create(name="Bench", slug=f"bench-{time.time_ns()}"))
    controlled_client = sender(controlled_tenant(args.recipients, args.repeat))[1]
    import os

    with celery_config(task_always_eager=False, broker_url=os.environ["CELERY_BROKER_URL"]) as app:
        app.control.purge()
        requests, controlled, floors, batch_ids = [], [], [], []
        for run in range(args.repeat):
            recipients = numbers(args.recipients, run * args.recipients)
            body = {"channel": "sms", "content": "Your order has shipped.", "recipients": recipients}
            started = time.perf_counter()
            response = client.post("/api/v1/communication/bulk", body, format="json")
            requests.append(time.perf_counter() - started)
            assert response.status_code == 200, response.content[:300]
            batch_ids.append(response.json()["batch_id"])
            floors.append(floor_once(user, args.recipients, 50_000_000 + run * args.recipients))
            started = time.perf_counter()
            response = controlled_client.post(
                "/api/v1/communication/bulk", {**body, "category": "marketing"}, format="json"
            )
            controlled.append(time.perf_counter() - started)
            assert response.status_code == 200, response.content[:300]
            off = sum(item["status_detail"] == "preference_off" for item in response.json()["items"])
            assert off == PREFERENCE_USERS_PER_RUN // 2, off  # the controls did their work
            CommunicationLog.objects.filter(batch_id=response.json()["batch_id"]).update(status="failed")
        committed = CommunicationLog.objects.filter(batch_id__in=batch_ids).count()
        assert committed == args.recipients * args.repeat, committed

        drain_batch = batch_ids[-1]
        CommunicationLog.objects.filter(batch_id__in=batch_ids[:-1]).update(
            status="failed"
        )  # drain one batch only
        app.control.purge()
        settle_log_table()
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
    controlled_ms = statistics.median(controlled) * 1000
    print(f"\nBulk send, {args.recipients:,} SMS recipients, PostgreSQL, median of {args.repeat}")
    print_table(
        ["measure", "value"],
        [
            ["POST /communication/bulk (to 200, committed)", f"{request_ms:.0f} ms"],
            ["the same with every delivery control on", f"{controlled_ms:.0f} ms"],
            ["floor: bulk_create of the same rows", f"{floor_ms:.0f} ms"],
            ["request / floor", f"{request_ms / floor_ms:.2f}x"],
            ["request with controls / floor", f"{controlled_ms / floor_ms:.2f}x"],
            ["drain, 1 worker, console provider", f"{drained:.2f} s"],
            ["throughput", f"{args.recipients / drained:,.0f} messages/s"],
        ],
    )


if __name__ == "__main__":
    main()
