"""Fault scenarios against real processes, with default settings: does every message end
sent once, or honestly accounted for?

    make chaos                      # every scenario, ~10 minutes
    make chaos CHAOS_ARGS="--only C-down --messages 300"

A real `celery worker` (prefork, 4 processes) and `celery beat` (sweeper every 30 s, status
sync every minute) run against the throwaway PostgreSQL and Redis of `.ci/with-services`;
the fake SUBMAIL server runs in this process and counts what it accepted, so duplicates are
counted where they would hurt: at the gateway. Per scenario it prints how the messages ended
(sent, delivered, failed with reason, still unknown), duplicates, and the time from the fault
to the last message being terminal.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import migrate, print_table, setup_django

setup_django()

from django.conf import settings  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from django.test import Client  # noqa: E402

from authms.models import Tenant, User  # noqa: E402
from communication.models import CommunicationLog  # noqa: E402
from communication.services import bulk_send_now  # noqa: E402
from providers.registry import reset_cache  # noqa: E402
from tests.conftest import SUBMAIL_APPID, SUBMAIL_APPKEY, access_token_for, celery_config  # noqa: E402
from tests.fakes.submail_server import FakeSubmail  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TERMINAL_TIMEOUT = 900


class Cluster:
    """The fake gateway, a worker and beat, each restartable."""

    def __init__(self):
        self.fake = FakeSubmail({SUBMAIL_APPID: SUBMAIL_APPKEY}).start()
        self.port = self.fake._server.server_address[1]
        self.env = {
            **os.environ,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "SMS_PROVIDER": "submail",
            "SUBMAIL_APPID": SUBMAIL_APPID,
            "SUBMAIL_APPKEY": SUBMAIL_APPKEY,
            "SUBMAIL_BASE_URL": self.fake.url,
            "SUBMAIL_SIGN_TYPE": "md5",
            "SUBMAIL_SIGNATURE": "【Chaos】",
            "SUBMAIL_SUBHOOK_KEY": "chaos-subhook-key",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        }
        self.worker = self.beat = self.web = None

    def _spawn(self, *args):
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "authms", *args, "-l", "WARNING"],
            cwd=ROOT, env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def start_worker(self):
        self.worker = self._spawn(
            "worker", "-c", "4", "--without-gossip", "--without-mingle", "--without-heartbeat"
        )
        time.sleep(3)

    def start_web(self):
        """The service itself, for SUBHOOK pushes: gunicorn as the README runs it."""
        import socket
        import urllib.request

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "authms.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
            cwd=ROOT, env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)  # noqa: S310 - loopback
                break
            except OSError:
                time.sleep(0.1)
        self.fake.subhook_url = f"http://127.0.0.1:{port}/api/v1/providers/submail/subhook"
        self.fake.subhook_key = self.env["SUBMAIL_SUBHOOK_KEY"]

    def start_beat(self):
        self.beat = self._spawn("beat", "-s", f"/tmp/authms-chaos-beat-{os.getpid()}")

    def signal_worker(self, signum):
        os.killpg(self.worker.pid, signum) if signum == signal.SIGKILL else os.kill(self.worker.pid, signum)

    def gateway_down(self):
        self.fake._server.shutdown()
        self.fake._server.server_close()

    def gateway_up(self):
        self.fake.start(self.port)

    def stop(self):
        for process in (self.worker, self.beat, self.web):
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.fake.stop()


def _send(user, count: int, label: str) -> str:
    recipients = [f"+8613{hash(label) % 10}{index:08d}" for index in range(count)]
    result = bulk_send_now(actor=user, channel="sms", content=f"Chaos {label}.", recipients=recipients)
    return result.batch.id


def _wait_terminal(batch_id: str, timeout: float = TERMINAL_TIMEOUT) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        close_old_connections()
        if not CommunicationLog.objects.filter(batch_id=batch_id, status="pending").exists():
            return time.monotonic() - started
        time.sleep(1)
    return float("inf")


def _wait_sent(batch_id: str, count: int):
    while CommunicationLog.objects.filter(batch_id=batch_id, status="sent").count() < count:
        time.sleep(0.2)


def _row(name, cluster, batch_id, terminal_after, note=""):
    logs = CommunicationLog.objects.filter(batch_id=batch_id)
    counts = Counter(logs.values_list("status", flat=True))
    details = Counter(logs.values_list("status_detail", flat=True))
    failed = Counter(
        (error or "")[:40] for error in logs.filter(status="failed").values_list("error", flat=True)
    )
    texts = set(logs.values_list("content", flat=True))
    accepted = Counter(
        to for to, content in cluster.fake.deliveries() if content.removeprefix("【Chaos】") in texts
    )
    duplicates = sum(n - 1 for n in accepted.values())
    return [
        name, logs.count(), counts["sent"] + counts["delivered"], counts["failed"],
        "; ".join(f"{n}× {reason}" for reason, n in failed.most_common(2)) or "—",
        details["unknown"] + details["reconciling"], duplicates,
        "not within 15 min" if terminal_after == float("inf") else f"{terminal_after:.0f} s", note,
    ]  # fmt: skip


def _kill_9(cluster, user, count, label):
    cluster.fake.faults.slow, cluster.fake.faults.slow_seconds = 1.0, 0.3
    batch_id = _send(user, count, label)
    _wait_sent(batch_id, count // 3)
    cluster.signal_worker(signal.SIGKILL)
    cluster.worker.wait()
    time.sleep(9)
    cluster.start_worker()
    terminal = _wait_terminal(batch_id)  # counted from the restart
    cluster.fake.faults.slow = 0.0
    return batch_id, terminal


def scenario_kill_9(cluster, user, count):
    """A. kill -9 of the worker mid-batch, restarted 9 s later."""
    batch_id, terminal = _kill_9(cluster, user, count, "A")
    return _row("A kill -9, restart 9 s later", cluster, batch_id, terminal, "time counted from the restart")


def scenario_kill_9_with_subhook(cluster, user, count):
    """A-hook. As A, with SUBHOOK `request` pushes configured (the README's advice)."""
    cluster.fake.push_requests = True
    try:
        batch_id, terminal = _kill_9(cluster, user, count, "A-hook")
    finally:
        cluster.fake.push_requests = False
    return _row(
        "A-hook as A, SUBHOOK request pushes", cluster, batch_id, terminal, "time counted from the restart"
    )


def scenario_sigterm(cluster, user, count):
    """A-term. SIGTERM (a deploy): the worker stops between chunks."""
    cluster.fake.faults.slow, cluster.fake.faults.slow_seconds = 1.0, 0.3
    batch_id = _send(user, count, "A-term")
    _wait_sent(batch_id, count // 3)
    asked = time.monotonic()
    cluster.signal_worker(signal.SIGTERM)
    cluster.worker.wait(timeout=60)
    stopped = time.monotonic() - asked
    cluster.start_worker()
    terminal = _wait_terminal(batch_id)
    cluster.fake.faults.slow = 0.0
    return _row(
        "A-term SIGTERM, restart", cluster, batch_id, terminal, f"stopped {stopped:.1f} s after SIGTERM"
    )


def scenario_gateway_faults(cluster, user, count):
    """C. 10 % HTTP 503 before processing, 5 % accepted then hung past the read timeout."""
    cluster.fake.faults.http_503 = 0.10
    cluster.fake.faults.slow, cluster.fake.faults.slow_seconds = 0.05, settings.SUBMAIL_READ_TIMEOUT + 1
    batch_id = _send(user, count, "C")
    terminal = _wait_terminal(batch_id)
    cluster.fake.faults.http_503 = cluster.fake.faults.slow = 0.0
    return _row("C 10 % 503, 5 % accept-then-hang", cluster, batch_id, terminal)


def scenario_clock_lookup(cluster, user, count):
    """C-ts. Only SUBMAIL's clock lookup fails, for 20 s."""
    cluster.fake.faults.timestamp_503 = True
    cluster.signal_worker(signal.SIGTERM)
    cluster.worker.wait(timeout=60)
    cluster.start_worker()  # a fresh worker has no clock offset yet
    batch_id = _send(user, count, "C-ts")
    time.sleep(20)
    cluster.fake.faults.timestamp_503 = False
    return _row("C-ts clock lookup fails 20 s", cluster, batch_id, _wait_terminal(batch_id))


def scenario_gateway_down(cluster, user, count):
    """C-down. The gateway refuses connections for 20 s."""
    cluster.gateway_down()
    batch_id = _send(user, count, "C-down")
    time.sleep(20)
    cluster.gateway_up()
    return _row("C-down refused 20 s", cluster, batch_id, _wait_terminal(batch_id))


def scenario_hung_broker(cluster, user, count):
    """B3. The broker accepts TCP and never answers (SIGSTOP): the API and /health answer."""
    redis_pid = int(
        subprocess.run(
            ["redis-cli", "-u", os.environ["CELERY_BROKER_URL"], "info", "server"],
            capture_output=True,
            text=True,
        )
        .stdout.split("process_id:")[1]
        .split()[0]
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    os.kill(redis_pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        body = {
            "channel": "sms",
            "content": "Chaos B3.",
            "recipients": [f"+8613{i:09d}" for i in range(count)],
        }
        response = client.post("/api/v1/communication/bulk", body, content_type="application/json")
        post_seconds = time.monotonic() - started
        started = time.monotonic()
        health = client.get("/api/v1/health")
        health_seconds = time.monotonic() - started
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    batch_id = response.json()["batch_id"]
    note = f"POST {response.status_code} in {post_seconds:.1f} s; /health {health.status_code} in {health_seconds:.1f} s"
    return _row("B3 broker hung (SIGSTOP)", cluster, batch_id, _wait_terminal(batch_id), note)


SCENARIOS = {
    "A": scenario_kill_9,
    "A-hook": scenario_kill_9_with_subhook,
    "A-term": scenario_sigterm,
    "C": scenario_gateway_faults,
    "C-ts": scenario_clock_lookup,
    "C-down": scenario_gateway_down,
    "B3": scenario_hung_broker,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--only", action="append", choices=list(SCENARIOS))
    args = parser.parse_args()
    migrate()
    tenant = Tenant.objects.create(name="Chaos", slug=f"chaos-{time.time_ns()}")
    user = User.objects.create(tenant=tenant, username=f"chaos-{time.time_ns()}", password="!")
    cluster = Cluster()
    settings.SUBMAIL_BASE_URL = cluster.fake.url
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "submail"}
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    reset_cache()
    rows = []
    with celery_config(task_always_eager=False, broker_url=os.environ["CELERY_BROKER_URL"]) as app:
        app.control.purge()
        cluster.start_web()
        cluster.start_worker()
        cluster.start_beat()
        try:
            for name, scenario in SCENARIOS.items():
                if args.only and name not in args.only:
                    continue
                print(f"… {name}: {scenario.__doc__.strip().splitlines()[0]}", flush=True)
                rows.append(scenario(cluster, user, args.messages))
        finally:
            cluster.stop()
    print(
        f"\nFault scenarios, default settings, {args.messages:,} SMS each (PostgreSQL, Redis, fake SUBMAIL)"
    )
    print_table(
        [
            "scenario",
            "messages",
            "sent",
            "failed",
            "failed with",
            "unknown",
            "duplicates",
            "all terminal",
            "note",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
