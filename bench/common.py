"""Shared benchmark helpers: Django set-up, timing, percentiles, a results table."""

import os
import signal
import socket
import statistics
import subprocess
import sys
import time

import django


def setup_django(urlconf: str | None = None):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authms.settings")
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.urls import clear_url_caches

    if connection.vendor != "postgresql":
        sys.exit("Benchmarks run on PostgreSQL: use `make bench` (it starts one).")
    if urlconf:
        settings.ROOT_URLCONF = urlconf
        clear_url_caches()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(command: list[str], port: int, *, cwd, env: dict) -> subprocess.Popen:
    """Start a web server process and wait (30 s at most) until it accepts connections on `port`."""
    server = subprocess.Popen(command, cwd=cwd, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit(f"{command[0]} did not start on port {port}")


def migrate():
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def settle_log_table():
    """VACUUM ANALYZE the log table, then CHECKPOINT, before a timed phase: what the set-up or
    the phase before left (dead row versions, a freshly filled table autovacuum would visit,
    dirty pages) is done now instead of inside the measurement, whichever side it would fall on."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE communication_log")
        cursor.execute("CHECKPOINT")


def bench_sender():
    """A fresh tenant and user to send as (migrations applied first); Celery's chatter off."""
    import logging

    from authms.models import Tenant, User

    migrate()
    logging.getLogger("celery").setLevel(logging.WARNING)
    tenant = Tenant.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    return User.objects.create(tenant=tenant, username=f"bench-{time.time_ns()}", password="!")


def time_calls(call, *, repeat: int, warmup: int = 5) -> dict:
    """p50 and p95 in ms of `repeat` calls."""
    return time_interleaved({"call": (call, 1)}, rounds=repeat, warmup=warmup)["call"]


def time_interleaved(calls: dict, *, rounds: int, warmup: int = 5) -> dict[str, dict]:
    """`time_calls` for several calls compared with each other: `calls` maps a name to (call,
    times per round), and each round runs every call its times, so a slow spell of the machine
    (another process, a checkpoint) falls on all of them alike instead of on whichever was being
    timed then. Returns `time_calls`' stats per name."""
    for call, _times in calls.values():
        for _ in range(warmup):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, (call, times) in calls.items():
            for _ in range(times):
                started = time.perf_counter()
                call()
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: _stats(timed) for name, timed in samples.items()}


def _stats(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {
        "p50": statistics.median(samples),
        "p95": samples[min(len(samples) - 1, int(len(samples) * 0.95))],
        "n": len(samples),
    }


def print_table(headers: list[str], rows: list[list]):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))


def seed_pending(
    user,
    count: int,
    tag: str,
    prefix: str = "+86139",
    *,
    provider: str,
    payload=None,
    channel: str = "sms",
    recipients: list[str] | None = None,
) -> None:
    """`count` pending logs of batch `tag` for `provider` (bulk_create, as bulk_send does):
    SMS to `<prefix>NNNNNNNN`, email to `<prefix>N@example.com`, or the given `recipients`
    (push: device ids)."""
    from datetime import UTC, datetime

    from communication.models import CommunicationLog

    now = datetime.now(UTC)
    CommunicationLog.objects.bulk_create(
        CommunicationLog(
            tenant_id=user.tenant_id, user=user, channel=channel, provider=provider,
            recipient=recipients[i] if recipients else f"{prefix}{i:08d}" if channel == "sms" else f"{prefix}{i}@example.com",
            subject="Your parcel" if channel == "email" else "",
            content=f"Your parcel is on its way ({tag}).", send_payload=payload, batch_id=tag,
            created_at=now, updated_at=now,
        )
        for i in range(count)
    )  # fmt: skip


def drain_in_workers(
    user,
    count: int,
    tag: str,
    *,
    provider: str,
    env: dict,
    processes: int = 1,
    payload=None,
    prefix: str = "+86139",
    channel: str = "sms",
    recipients: list[str] | None = None,
    check_sent: bool = True,
) -> float:
    """Seconds for `celery worker -c processes` (real processes, as deployed, default settings
    plus `env`) to send a fresh batch of `count` messages; the fake gateway runs in this process,
    as a remote gateway would run elsewhere. The worker's start-up is not measured."""
    from django.conf import settings

    from communication.models import CommunicationLog
    from communication.services import enqueue_dispatch

    pending = CommunicationLog.objects.filter(batch_id=tag, status="pending")

    def any_pending() -> bool:
        # Through the claim's two partial indexes (unclaimed, then claimed), each a probe: the
        # batch's own index leads past every sent log to a pending one, 3 ms a poll late in a
        # drain, which took a sixth of the database's CPU while 10,000 SMS drained.
        return (
            pending.filter(claimed_at__isnull=True).exists()
            or pending.filter(claimed_at__isnull=False).exists()
        )

    seed_pending(
        user, count, tag, prefix, provider=provider, payload=payload, channel=channel, recipients=recipients
    )
    settle_log_table()
    worker_env = {
        **os.environ, "CELERY_TASK_ALWAYS_EAGER": "false", "DISPATCH_FANOUT": str(processes),
        **{name: str(value) for name, value in env.items()},
    }  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "authms", "worker", "-l", "WARNING", "-c", str(processes),
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=worker_env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(3)
        settings.DISPATCH_FANOUT = processes
        started = time.perf_counter()
        enqueue_dispatch(tag, count)
        while any_pending():
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait()
    if check_sent:
        assert CommunicationLog.objects.filter(batch_id=tag, status="sent").count() == count
    return elapsed


# Recipients of the batched drains whose median is taken (other phases use other prefixes).
MEDIAN_DRAIN_PREFIXES = ["+86139", "+86134", "+86133"]


def median_drain(user, count: int, tag: str, **kwargs) -> tuple[float, str]:
    """The median of drains of fresh batches, one per MEDIAN_DRAIN_PREFIXES, and the runs as text.

    A drain of 10,000 batched messages lasts about two seconds, and one slow spell of the
    shared machine moved a single one by a third (1.63 s and 2.18 s in consecutive runs of the
    same code); a one-call drain lasts twenty, which averages such spells out."""
    runs = [
        drain_in_workers(user, count, f"{tag}_{i}", prefix=prefix, **kwargs)
        for i, prefix in enumerate(MEDIAN_DRAIN_PREFIXES)
    ]
    return statistics.median(runs), ", ".join(f"{seconds:.2f}" for seconds in runs)


def send_rows(
    messages: int, batched: float, single: float, batched_label: str, single_label: str, *, what: str = "SMS"
) -> list[list]:
    """Table rows: a batch of messages (`what`) sent in chunks against one call each, and the ratio."""
    return [
        [
            f"send {messages:,} {what}, {batched_label}",
            f"{batched:.2f} s",
            f"{messages / batched:,.0f} messages/s",
        ],
        [
            f"send {messages:,} {what}, {single_label}",
            f"{single:.2f} s",
            f"{messages / single:,.0f} messages/s",
        ],
        ["speed-up", f"{single / batched:.1f}x", ""],
    ]
