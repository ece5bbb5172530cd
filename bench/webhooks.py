"""Does webhook fan-out slow the send pipeline? 10,000-SMS bulks with and without an endpoint.

    make bench BENCH=webhooks
    make bench BENCH=webhooks BENCH_ARGS="--recipients=2000 --repeat=2"

Two tenants send alternately, each bulk accepted over the real URL stack and drained by one
in-process Celery worker (solo pool, console provider); one tenant has an endpoint on
`message.sent` at a local receiver (the test fake, which verifies every signature). A second
process plays beat and the `webhooks` queue's worker, and hosts the receiver, throughout both
tenants' runs, as separate processes would in production: it sequences events (which every
send writes, endpoint or not) and posts the due deliveries. Printed: the request and
drain medians of each tenant, their ratio (target ≤ 1.10), and the webhooks' throughput and
lag (last delivery after the last send).
"""

import argparse
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from bench.common import migrate, print_table, setup_django

setup_django()

from celery.contrib.testing.worker import start_worker
from django.conf import settings

from authms.models import Tenant
from bench.bulk_send import numbers, sender
from communication.models import CommunicationLog, WebhookDelivery
from communication.services.events import events_sequence
from communication.services.webhooks import deliveries_send, endpoint_create
from tests.conftest import celery_config
from tests.fakes.webhook_receiver import WebhookReceiver


def background(port: int, secret: str, report: str) -> None:
    """The second process: the receiver, and beat's sequencing and the webhooks worker's
    sending in a loop, until SIGTERM; then what the receiver got, to `report`."""
    receiver = WebhookReceiver([secret]).start(port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        while events_sequence():
            pass
        while deliveries_send():
            pass
        stop.wait(0.2)
    with open(report, "w") as out:
        json.dump(
            {"ids": receiver.ids(), "verified": all(r.verified_by == [0] for r in receiver.received)}, out
        )
    receiver.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def send_and_drain(client, recipients: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    response = client.post(
        "/api/v1/communication/bulk",
        {"channel": "sms", "content": "Your order has shipped.", "recipients": recipients},
        format="json",
        HTTP_PREFER="return=minimal",
    )
    accepted = time.perf_counter()
    assert response.status_code == 200, response.content[:300]
    batch_id = response.json()["batch_id"]
    while CommunicationLog.objects.filter(batch_id=batch_id, status="pending").exists():
        time.sleep(0.05)
    return accepted - started, time.perf_counter() - accepted


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--background", nargs=3, metavar=("PORT", "SECRET", "REPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("providers.console", "celery", "communication.services.webhooks"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.background:
        background(int(args.background[0]), args.background[1], args.background[2])
        return
    migrate()
    settings.WEBHOOK_ALLOW_HTTP, settings.WEBHOOK_ALLOWED_NETWORKS = (
        True,
        ["127.0.0.0/8"],
    )  # the local receiver
    port, report = free_port(), f"/tmp/bench-webhooks-{os.getpid()}.json"
    _plain_user, plain = sender(Tenant.objects.create(name="Plain", slug=f"plain-{time.time_ns()}"))
    hooked_user, hooked = sender(Tenant.objects.create(name="Hooked", slug=f"hooked-{time.time_ns()}"))
    _endpoint, secret = endpoint_create(
        actor=hooked_user, url=f"http://127.0.0.1:{port}/in", event_types=["message.sent"]
    )
    helper = subprocess.Popen(
        [sys.executable, "-m", "bench.webhooks", "--background", str(port), secret, report],
        env={**os.environ, "WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"},
    )
    times = {"plain": ([], []), "hooked": ([], [])}
    with celery_config(task_always_eager=False, broker_url=os.environ["CELERY_BROKER_URL"]) as app:
        app.control.purge()
        with start_worker(
            app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30
        ):
            for run in range(args.repeat):
                for name, client in (("plain", plain), ("hooked", hooked)):
                    offset = (2 * run + (name == "hooked")) * args.recipients
                    accept, drain = send_and_drain(client, numbers(args.recipients, offset))
                    times[name][0].append(accept)
                    times[name][1].append(drain)
            last_sent = time.perf_counter()
    expected = args.recipients * args.repeat
    while WebhookDelivery.objects.filter(state="delivered").count() < expected:
        time.sleep(0.1)
    lag = time.perf_counter() - last_sent
    helper.send_signal(signal.SIGTERM)
    helper.wait(60)
    with open(report) as result:
        received = json.load(result)
    os.unlink(report)
    assert len(received["ids"]) == len(set(received["ids"])) == expected and received["verified"]
    first = min(WebhookDelivery.objects.values_list("created_at", flat=True))
    last = max(WebhookDelivery.objects.values_list("delivered_at", flat=True))

    median = {name: [statistics.median(values) * 1000 for values in pair] for name, pair in times.items()}
    print(f"\nWebhook fan-out, {args.recipients:,} SMS per bulk, {args.repeat} bulks per tenant, PostgreSQL")
    print_table(
        ["measure", "no endpoint", "with an endpoint", "ratio"],
        [
            ["POST /communication/bulk (median)", f"{median['plain'][0]:.0f} ms", f"{median['hooked'][0]:.0f} ms",
             f"{median['hooked'][0] / median['plain'][0]:.2f}x"],
            ["drain by 1 worker (median)", f"{median['plain'][1]:.0f} ms", f"{median['hooked'][1]:.0f} ms",
             f"{median['hooked'][1] / median['plain'][1]:.2f}x"],
        ],
    )  # fmt: skip
    print(
        f"webhooks: {expected:,} delivered once each and verified, "
        f"{expected / (last - first).total_seconds():,.0f}/s; the last {lag:.1f} s after the last send"
    )


if __name__ == "__main__":
    main()
