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
import threading
import time
from collections import Counter
from pathlib import Path

from bench.common import migrate, print_table, setup_django

setup_django()

from django.conf import settings  # noqa: E402
from django.db import close_old_connections, connection  # noqa: E402
from django.test import Client  # noqa: E402

from authms.models import Tenant, User  # noqa: E402
from communication.models import CommunicationLog, UnstartedCall  # noqa: E402
from communication.services import bulk_send_now  # noqa: E402
from providers.registry import reset_cache  # noqa: E402
from templates.models import Template  # noqa: E402
from tests.conftest import (  # noqa: E402
    ALIYUN_KEY_ID,
    ALIYUN_KEY_SECRET,
    ALIYUN_TEMPLATES,
    SUBMAIL_APPID,
    SUBMAIL_APPKEY,
    access_token_for,
    celery_config,
)
from tests.fakes.aliyun_server import FakeAliyun  # noqa: E402
from tests.fakes.submail_server import FakeSubmail  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TERMINAL_TIMEOUT = 900


class Cluster:
    """The fake gateway, a worker and beat, each restartable."""

    def __init__(self):
        self.fake = FakeSubmail({SUBMAIL_APPID: SUBMAIL_APPKEY}).start()
        self.fake.deliver_after(10)  # as carriers do; the health check judges silence
        self.port = self.fake._server.server_address[1]
        self.aliyun = FakeAliyun({ALIYUN_KEY_ID: ALIYUN_KEY_SECRET}, templates=ALIYUN_TEMPLATES).start()
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
            # Templates with an Aliyun code fail over to it; free text (most scenarios) cannot.
            "SMS_PROVIDERS": "submail,aliyun",
            "ALIYUN_ACCESS_KEY_ID": ALIYUN_KEY_ID,
            "ALIYUN_ACCESS_KEY_SECRET": ALIYUN_KEY_SECRET,
            "ALIYUN_SMS_SIGN_NAME": "Chaos",
            "ALIYUN_SMS_BASE_URL": self.aliyun.url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        }
        self.worker = self.beat = self.web = None
        # Like systemd's Restart=always: a worker that exits on its own is started again (kombu
        # can exit with "Unrecoverable error" when Redis goes away). Off while a scenario kills it.
        self.supervise, self.supervisor_restarts = True, 0
        threading.Thread(target=self._supervise, daemon=True).start()

    def _supervise(self):
        while True:
            time.sleep(1)
            if self.supervise and self.worker is not None and self.worker.poll() is not None:
                self.supervisor_restarts += 1
                self.start_worker()

    def _spawn(self, *args):
        # Web and workers share this machine: the worker runs niced, as the README advises.
        nice = ["nice", "-n", "10"] if args[0] == "worker" else []
        return subprocess.Popen(
            [*nice, sys.executable, "-m", "celery", "-A", "authms", *args, "-l", "WARNING"],
            cwd=ROOT, env=self.env, start_new_session=True,
            stdout=self.log(args[0]), stderr=subprocess.STDOUT,
        )  # fmt: skip

    @staticmethod
    def log(name: str):
        """Each process's output, appended across restarts, for when a scenario goes wrong."""
        return open(f"/tmp/authms-chaos-{os.getpid()}-{name}.log", "a")  # noqa: SIM115 - the child owns it

    def start_worker(self):
        self.supervise = True
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
        self.web_url = f"http://127.0.0.1:{port}"
        self.web = subprocess.Popen(  # the README's production command
            [sys.executable, "-m", "gunicorn", "authms.wsgi", "-b", f"127.0.0.1:{port}", "-w", "4", "--timeout", "60"],
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
        """A scenario's own kill or stop: the scenario restarts the worker, not the supervisor."""
        self.supervise = False
        os.killpg(self.worker.pid, signum) if signum == signal.SIGKILL else os.kill(self.worker.pid, signum)

    def gateway_down(self):
        self.fake.stop()  # kept-alive connections are cut too, as in a real outage

    def gateway_up(self):
        self.fake.start(self.port)

    def redis_down(self):
        subprocess.run(
            ["redis-cli", "-p", os.environ["SERVICES_REDIS_PORT"], "shutdown", "nosave"], check=False
        )

    def redis_up(self):
        port = os.environ["SERVICES_REDIS_PORT"]
        subprocess.run(
            ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "yes", "--dir", os.environ["SERVICES_DIR"]],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        while subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True).returncode:
            time.sleep(0.1)

    @staticmethod
    def _pg_ctl(*args):
        subprocess.run(
            ["runuser", "-u", "postgres", "--", os.environ["SERVICES_PG_CTL"], "-D", os.environ["SERVICES_PG_DATA"],
             "-w", *args],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def database_down(self):
        self._pg_ctl("-m", "fast", "stop")

    def database_up(self):
        data = os.environ["SERVICES_PG_DATA"]
        self._pg_ctl("-l", f"{data}/server.log", "-o", os.environ["SERVICES_PG_OPTIONS"], "start")
        connection.close()  # this process's connection died with the server

    def stop(self):
        self.supervise = False
        for process in (self.worker, self.beat, self.web):
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.fake.stop()
        self.aliyun.stop()


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
    in_flight = CommunicationLog.objects.filter(batch_id=batch_id, status="pending", claimed_at__isnull=False)
    unstarted = in_flight.filter(provider_ref__in=UnstartedCall.objects.values("reference")).count()
    at_kill = f"at the kill: {in_flight.count()} claimed, {unstarted} of them in calls not started"
    time.sleep(9)
    cluster.start_worker()
    terminal = _wait_terminal(batch_id)  # counted from the restart
    cluster.fake.faults.slow = 0.0
    return batch_id, terminal, f"time counted from the restart; {at_kill}"


def scenario_kill_9(cluster, user, count):
    """A. kill -9 of the worker mid-batch, restarted 9 s later."""
    batch_id, terminal, note = _kill_9(cluster, user, count, "A")
    return _row("A kill -9, restart 9 s later", cluster, batch_id, terminal, note)


def scenario_kill_9_with_subhook(cluster, user, count):
    """A-hook. As A, with SUBHOOK `request` pushes configured (the README's advice)."""
    cluster.fake.push_requests, cluster.fake.pushes_refused = True, 0
    try:
        batch_id, terminal, note = _kill_9(cluster, user, count, "A-hook")
    finally:
        cluster.fake.push_requests = False
    note += f"; pushes not answered with a 2xx: {cluster.fake.pushes_refused}"
    return _row("A-hook as A, SUBHOOK request pushes", cluster, batch_id, terminal, note)


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


def _bulk_body(count: int, label: str) -> dict:
    return {
        "channel": "sms",
        "content": f"Chaos {label}.",
        "recipients": [f"+8613{hash(label) % 10}{index:08d}" for index in range(count)],
    }


def scenario_redis_down(cluster, user, count):
    """B2. The one Redis (cache and broker) down 20 s while a bulk request arrives."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    cluster.redis_down()
    down_at = time.monotonic()
    started = time.monotonic()
    response = client.post(
        "/api/v1/communication/bulk", _bulk_body(count, "B2"), content_type="application/json"
    )
    post_seconds = time.monotonic() - started
    time.sleep(max(0.0, 20 - (time.monotonic() - down_at)))
    cluster.redis_up()
    batch_id = response.json()["batch_id"]
    note = f"POST {response.status_code} in {post_seconds:.2f} s; time counted from Redis's return"
    return _row("B2 Redis down 20 s during POST", cluster, batch_id, _wait_terminal(batch_id), note)


def scenario_database_restart(cluster, user, count):
    """E. PostgreSQL restarted mid-batch (down 10 s)."""
    cluster.fake.faults.slow, cluster.fake.faults.slow_seconds = 1.0, 0.3
    batch_id = _send(user, count, "E")
    _wait_sent(batch_id, count // 3)
    cluster.database_down()
    time.sleep(10)
    cluster.database_up()
    terminal = _wait_terminal(batch_id)
    cluster.fake.faults.slow = 0.0
    return _row(
        "E PostgreSQL down 10 s mid-batch", cluster, batch_id, terminal, "time counted from its return"
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def _http(base_url: str, method: str, path: str, token: str, body: bytes | None = None, headers=()):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        base_url + path, method=method, data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **dict(headers)},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310 - loopback
            return answer.status, answer.read(), answer.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


SPIKE_READS = [
    "/api/v1/communication/logs?page_size=20",
    "/api/v1/notifications",
    "/api/v1/notifications/unread-count",
]


def _read_until_stopped(base_url: str, tokens: list[str], stop, samples_out):
    """In a process of its own (the fake gateway's work in ours must not slow the clock of the
    readers): one thread per reader, each GETting its logs and inbox in a loop."""
    import threading

    samples = []

    def read(token):
        while not stop.is_set():
            for path in SPIKE_READS:
                started = time.time()
                status, _body, _headers = _http(base_url, "GET", path, token)
                samples.append((started, time.time() - started, status))

    threads = [threading.Thread(target=read, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    samples_out.put(samples)


def scenario_spike(cluster, user, count):
    """S. 50 concurrent bulks of 10,000 while 50 users read their logs and inbox (gunicorn -w 4)."""
    import json
    import multiprocessing
    import threading

    bulks, recipients = 50, 10_000  # the spike, whatever --messages says
    readers, senders = (
        [
            User.objects.create(tenant=user.tenant, username=f"{role}-{i}-{time.time_ns()}", password="!")
            for i in range(50)
        ]
        for role in ("reader", "sender")
    )
    batch_ids, waits = [], Counter()

    def send(index):
        token = access_token_for(senders[index])
        body = json.dumps(_bulk_body(recipients, f"S{index}")).encode()
        while True:  # a well-behaved client: wait as told, then try again
            status, answer, headers = _http(
                cluster.web_url, "POST", "/api/v1/communication/bulk", token, body,
                {"Prefer": "return=minimal", "Idempotency-Key": f"spike-{index}-{cluster.port}"},
            )  # fmt: skip
            if status in (429, 503):
                waits[status] += 1
                time.sleep(float(headers.get("Retry-After", 1)))
                continue
            assert status == 200, (status, answer[:200])
            batch_ids.append(json.loads(answer)["batch_id"])
            return

    context = multiprocessing.get_context("fork")
    stop, samples_out = context.Event(), context.Queue()
    tokens = [access_token_for(reader) for reader in readers]
    connection.close()  # not shared with the child
    reading = context.Process(target=_read_until_stopped, args=(cluster.web_url, tokens, stop, samples_out))
    reading.start()
    time.sleep(10)
    spike_started, started = time.time(), time.monotonic()
    sending = [threading.Thread(target=send, args=(index,)) for index in range(bulks)]
    for thread in sending:
        thread.start()
    for thread in sending:
        thread.join()
    spike_ended, accepted_after = time.time(), time.monotonic() - started
    stop.set()
    samples = samples_out.get()
    reading.join()
    for batch_id in batch_ids:
        _wait_terminal(batch_id)
    terminal = time.monotonic() - started  # from the first bulk request to the last message terminal
    before = [seconds for at, seconds, _status in samples if at < spike_started]
    during = [seconds for at, seconds, _status in samples if spike_started <= at < spike_ended]
    rows = [
        _row(f"S bulk {index + 1}", cluster, batch_id, terminal) for index, batch_id in enumerate(batch_ids)
    ]
    total = [
        sum(row[i] for row in rows) if isinstance(rows[0][i], int) else rows[0][i]
        for i in range(len(rows[0]))
    ]
    total[0] = f"S {bulks} bulks × {recipients:,}, 50 readers"
    total[-1] = (
        f"{len(batch_ids)} bulks 200 within {accepted_after:.0f} s ({waits[503]} waits on 503); readers "
        f"p95 {_percentile(during, 0.95) * 1000:.0f} ms during the spike ({_percentile(before, 0.95) * 1000:.0f} ms "
        f"before), {sum(1 for *_, status in samples if status != 200)} non-200 of {len(samples)}"
    )
    return total


def _send_template(user, count: int, prefix: str) -> str:
    Template.objects.get_or_create(
        tenant=user.tenant, code="chaos-otp", channel="sms",
        defaults={"name": "OTP", "body": "Code {{code}}", "provider_codes": {"submail": "CHAOS1", "aliyun": "SMS_100"}},
    )  # fmt: skip
    width = 14 - len(prefix)  # +86 and 11 digits
    recipients = [f"{prefix}{index:0{width}d}" for index in range(count)]
    return bulk_send_now(
        actor=user, channel="sms", recipients=recipients, template="chaos-otp", variables={"code": "2468"}
    ).batch.id


def _failover_row(name, cluster, batch_ids, terminal, note=""):
    """Like _row, with duplicates counted over both gateways: a number submitted to SUBMAIL
    and to Aliyun is a duplicate too."""
    logs = CommunicationLog.objects.filter(batch_id__in=batch_ids)
    numbers = {recipient.removeprefix("+86") for recipient in logs.values_list("recipient", flat=True)}
    accepted = Counter(
        to for to, _ in cluster.fake.deliveries() + cluster.aliyun.deliveries() if to in numbers
    )
    counts = Counter(logs.values_list("status", flat=True))
    details = Counter(logs.values_list("status_detail", flat=True))
    by_provider = Counter(logs.filter(status__in=["sent", "delivered"]).values_list("provider", flat=True))
    return [
        name, logs.count(), counts["sent"] + counts["delivered"], counts["failed"], "—",
        details["unknown"] + details["reconciling"], sum(n - 1 for n in accepted.values()),
        "not within 15 min" if terminal == float("inf") else f"{terminal:.0f} s",
        f"{note}; sent via " + ", ".join(f"{provider} {n:,}" for provider, n in sorted(by_provider.items())),
    ]  # fmt: skip


def scenario_failover_down(cluster, user, count):
    """F-down. SUBMAIL refuses every connection: a 10,000-recipient template bulk goes through Aliyun."""
    cluster.gateway_down()
    try:
        batch_id = _send_template(user, 10 * count, "+861450")
        terminal = _wait_terminal(batch_id, timeout=600)
    finally:
        cluster.gateway_up()
    return _failover_row(
        "F-down SUBMAIL refuses, Aliyun next", cluster, [batch_id], terminal, "time from the request"
    )


def scenario_failover_hang(cluster, user, count):
    """F-hang. SUBMAIL accepts then times out 10 % of calls (with request pushes): never sent twice."""
    cluster.fake.push_requests = True
    cluster.fake.faults.slow, cluster.fake.faults.slow_seconds = 0.10, settings.SUBMAIL_READ_TIMEOUT + 1
    try:
        batch_id = _send_template(user, count, "+861451")
        terminal = _wait_terminal(batch_id)
    finally:
        cluster.fake.faults.slow, cluster.fake.push_requests = 0.0, False
    return _failover_row(
        "F-hang SUBMAIL 10 % accept-then-hang", cluster, [batch_id], terminal, "time from the request"
    )


def scenario_failover_back(cluster, user, count):
    """F-back. SUBMAIL down, then back: out of rotation, probed, new traffic back within minutes."""
    from communication.models import ProviderSwitch
    from notifications.models import Notification

    switches_before = ProviderSwitch.objects.count()
    batch_ids, started = [], time.monotonic()

    def send_for(seconds: float, prefix: str):
        # +86145[23]…: numbers no other scenario sends to, so cross-gateway duplicates are F-back's own.
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            batch_ids.append(_send_template(user, 100, f"{prefix}{len(batch_ids):03d}"))
            time.sleep(5)

    cluster.gateway_down()
    try:
        send_for(90, "+861452")  # SUBMAIL refuses: failovers, then out of rotation
    finally:
        cluster.gateway_up()
    recovered, back_after = time.monotonic(), None
    while back_after is None and time.monotonic() - recovered < 600:
        batch_ids.append(_send_template(user, 100, f"+861453{len(batch_ids):03d}"))
        time.sleep(5)
        recent = CommunicationLog.objects.filter(batch_id__in=batch_ids[-6:]).exclude(status="pending")
        on_submail = recent.filter(provider="submail").count()
        if recent.count() >= 500 and on_submail >= 0.9 * recent.count():
            back_after = time.monotonic() - recovered
    terminal = max(_wait_terminal(batch_id) for batch_id in batch_ids) + (time.monotonic() - started)
    switches = list(ProviderSwitch.objects.order_by("at")[switches_before:].values_list("provider", "state"))
    notices = Notification.objects.filter(event_type__startswith="provider.health.").count()
    row = _failover_row("F-back SUBMAIL down 90 s, then back", cluster, batch_ids, terminal)
    row[-1] = (
        (
            f"≥ 90 % of new traffic on SUBMAIL {back_after:.0f} s after it came back; "
            if back_after is not None
            else "new traffic not back on SUBMAIL within 10 min; "
        )
        + f"switches {switches}, {notices} staff notices"
        + row[-1]
    )
    return row


SCENARIOS = {
    "A": scenario_kill_9,
    "A-hook": scenario_kill_9_with_subhook,
    "A-term": scenario_sigterm,
    "C": scenario_gateway_faults,
    "C-ts": scenario_clock_lookup,
    "C-down": scenario_gateway_down,
    "B3": scenario_hung_broker,
    "B2": scenario_redis_down,
    "E": scenario_database_restart,
    "S": scenario_spike,
    "F-down": scenario_failover_down,
    "F-hang": scenario_failover_hang,
    "F-back": scenario_failover_back,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--only", action="append", choices=list(SCENARIOS))
    args = parser.parse_args()
    migrate()
    tenant = Tenant.objects.create(name="Chaos", slug=f"chaos-{time.time_ns()}")
    user = User.objects.create(tenant=tenant, username=f"chaos-{time.time_ns()}", password="!")
    User.objects.create(  # the platform admin told of provider switches
        tenant=tenant, username=f"chaos-root-{time.time_ns()}", password="!", is_staff=True, is_superuser=True
    )
    cluster = Cluster()
    settings.SUBMAIL_BASE_URL = cluster.fake.url
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "submail"}
    settings.FAILOVER_PROVIDERS = {"sms": ["aliyun"]}
    settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET = ALIYUN_KEY_ID, ALIYUN_KEY_SECRET
    settings.ALIYUN_SMS_SIGN_NAME, settings.ALIYUN_SMS_BASE_URL = "Chaos", cluster.aliyun.url
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
                restarts = cluster.supervisor_restarts
                rows.append(scenario(cluster, user, args.messages))
                if cluster.supervisor_restarts > restarts:
                    restarted = cluster.supervisor_restarts - restarts
                    rows[-1][-1] += f" (the worker exited; restarted by the supervisor {restarted}×)"
                print("   ", " | ".join(str(cell) for cell in rows[-1]), flush=True)
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
