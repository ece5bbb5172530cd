"""The inbox's live stream at 1,000 concurrent connections: delivery latency of new notifications.

    make bench BENCH=notifications_stream
    make bench BENCH=notifications_stream BENCH_ARGS="--streams=2000 --workers=2"

Starts the service under uvicorn (`--workers` processes) against the bench PostgreSQL and Redis,
opens `--streams` Server-Sent Events connections (one user each, with stream tokens, on raw
sockets so the client stays light), and measures, from just before `notify()` to the event's
arrival at the client:
- baseline: one stream open, notifications to its user one at a time;
- singles: all streams open, notifications to random users, 50 a second;
- broadcast: one notification to the whole tenant (every stream gets it at once).
Every stream must receive every notification meant for it; a missed one is reported.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import free_port, migrate, print_table, serve, setup_django

setup_django()

from django.conf import settings
from django.db import connection

from authms.models import Tenant, User
from notifications.live import stream_token
from notifications.services import notify

ROOT = Path(__file__).resolve().parents[1]
STREAM = "/api/v1/notifications/stream"


def start_server(port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1,testserver", "NOTIFICATION_STREAM_MAX_AGE": "1h"}
    return serve(
        [str(ROOT / ".venv/bin/uvicorn"), "authms.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--timeout-graceful-shutdown", "1",
         "--backlog", "4096"],
        port, cwd=ROOT, env=env,
    )  # fmt: skip


def rss_mb(root_pid: int) -> float:
    """Resident memory of a process and its children (uvicorn's workers), in MB."""
    pids = [root_pid]
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


class Stream:
    """One SSE connection on a raw socket (HTTP/1.1, chunked), recording when each notification
    event arrives: {notification id: monotonic time}."""

    def __init__(self, user_id: str):
        self.user_id = user_id
        self.arrivals: dict[str, float] = {}
        self.ready = asyncio.Event()

    async def run(self, port: int, token: str):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {STREAM}?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace").splitlines()[0])
        buffer = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                return
            buffer += (await reader.readexactly(size + 2))[:-2]
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                self._take(event.decode())

    def _take(self, event: str):
        fields = dict(
            line.split(": ", 1) for line in event.splitlines() if ": " in line and not line.startswith(":")
        )
        if fields.get("event") == "counts":
            self.ready.set()
        elif fields.get("event") == "notification":
            self.arrivals[json.loads(fields["data"])["id"]] = time.monotonic()


def latencies(streams, sent: list[tuple[str, str, float]]) -> tuple[list[float], int]:
    """Milliseconds from notify() to arrival for each (user, notification id, t0); and how many
    never arrived."""
    by_user = {stream.user_id: stream for stream in streams}
    samples, missing = [], 0
    for user_id, notification_id, started in sent:
        arrived = by_user[user_id].arrivals.get(notification_id)
        if arrived is None:
            missing += 1
        else:
            samples.append((arrived - started) * 1000)
    return samples, missing


def newest_ids(user_ids: list[str]) -> dict[str, str]:
    from notifications.models import Notification

    rows = Notification.objects.filter(user_id__in=user_ids).order_by("user_id", "-created_at", "-id")
    return dict(reversed(list(rows.values_list("user_id", "id"))))


def send_to(user: User, title: str) -> tuple[str, str, float]:
    started = time.monotonic()
    notify(
        tenant_id=user.tenant_id,
        user_ids=[user.id],
        type="system",
        event_type="bench.stream.single",
        title=title,
    )
    return user.id, newest_ids([user.id])[user.id], started


def database_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def broadcast(tenant_id: str, title: str) -> None:
    notify(
        tenant_id=tenant_id,
        whole_tenant=True,
        type="system",
        event_type="bench.stream.broadcast",
        title=title,
    )


async def settle(seconds: float = 2.0):
    await asyncio.sleep(seconds)


def summary(name: str, samples: list[float], missing: int, baseline_p95: float | None) -> list:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))] if samples else float("nan")
    ratio = f"{p95 / baseline_p95:.1f}x" if baseline_p95 else "1.0x (baseline)"
    return [
        name,
        len(samples),
        missing,
        f"{statistics.median(samples):.1f}",
        f"{p95:.1f}",
        f"{samples[-1]:.1f}",
        ratio,
    ]


async def main_async(args, users: list[User], port: int, server: subprocess.Popen):
    loop = asyncio.get_running_loop()
    tasks = []

    async def open_streams(for_users):
        opened = [Stream(user.id) for user in for_users]
        gate = asyncio.Semaphore(100)

        async def one(stream, user):
            async with gate:
                tasks.append(asyncio.create_task(stream.run(port, stream_token(user))))
                await asyncio.wait_for(stream.ready.wait(), 30)

        await asyncio.gather(*(one(stream, user) for stream, user in zip(opened, for_users, strict=True)))
        return opened

    rows = []
    # Baseline: one stream.
    [lone] = await open_streams(users[:1])
    sent = []
    for index in range(args.singles // 4):
        sent.append(await loop.run_in_executor(None, send_to, users[0], f"baseline {index}"))
        await asyncio.sleep(0.05)
    await settle()
    samples, missing = latencies([lone], sent)
    baseline_p95 = sorted(samples)[int(len(samples) * 0.95)]
    rows.append(summary("baseline: 1 stream, one at a time", samples, missing, None))

    started = time.monotonic()
    streams = [lone, *await open_streams(users[1 : args.streams])]
    opening = time.monotonic() - started
    print(f"{len(streams)} streams open in {opening:.1f}s; server RSS {rss_mb(server.pid):.0f} MB")

    sent = []
    for index in range(args.singles):
        user = random.choice(users[: args.streams])
        sent.append(await loop.run_in_executor(None, send_to, user, f"single {index}"))
        await asyncio.sleep(0.02)
    await settle()
    samples, missing = latencies(streams, sent)
    rows.append(
        summary(f"singles: {len(streams)} streams, 50/s to random users", samples, missing, baseline_p95)
    )

    for round_ in range(args.broadcasts):
        stream_users = [stream.user_id for stream in streams]
        started = time.monotonic()
        await loop.run_in_executor(None, broadcast, users[0].tenant_id, f"broadcast {round_}")
        notified = time.monotonic()
        newest = await loop.run_in_executor(None, newest_ids, stream_users)
        await settle(3.0)
        samples, missing = latencies(
            streams, [(user_id, newest[user_id], started) for user_id in stream_users]
        )
        rows.append(
            summary(
                f"broadcast {round_ + 1}: one notify to {len(streams)} users", samples, missing, baseline_p95
            )
        )
        print(
            f"broadcast {round_ + 1}: notify() for {len(users)} users took {(notified - started) * 1000:.0f} ms"
        )

    pg_connections = await loop.run_in_executor(None, database_connections)
    print(
        f"server RSS with {len(streams)} streams: {rss_mb(server.pid):.0f} MB; PostgreSQL connections: {pg_connections}"
    )
    for task in tasks:
        task.cancel()
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--broadcasts", type=int, default=3)
    args = parser.parse_args()
    if not settings.REDIS_URL:
        sys.exit("REDIS_URL is not set: use `make bench` (it starts Redis).")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per stream, both ends

    migrate()
    tenant = Tenant.objects.create(name="Stream bench", slug=f"stream-bench-{time.time_ns()}")
    users = User.objects.bulk_create(
        User(tenant=tenant, username=f"stream-{tenant.slug}-{i}", password="!") for i in range(args.streams)
    )
    users = list(User.objects.filter(tenant=tenant).select_related("tenant").order_by("username"))
    port = free_port()
    server = start_server(port, args.workers)
    try:
        rows = asyncio.run(main_async(args, users, port, server))
    finally:
        server.terminate()
        server.wait(10)
    print(
        f"\nuvicorn --workers {args.workers}, {os.cpu_count()} cores; latency in ms from notify() to arrival"
    )
    print_table(["scenario", "n", "missed", "p50", "p95", "max", "p95 / baseline"], rows)


if __name__ == "__main__":
    main()
