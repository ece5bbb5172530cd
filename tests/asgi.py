"""The app under uvicorn in a thread of the test process (the inbox stream needs an ASGI server;
pytest-django's live_server is WSGI), and a Server-Sent Events reader for it."""

import json
import queue
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from django.db import connection


@dataclass
class AsgiServer:
    url: str
    server: uvicorn.Server
    backends_before: frozenset[int]  # PostgreSQL backends open before it started

    def stop(self):
        self.server.should_exit = True


def _this_databases_backends() -> frozenset[int]:
    if connection.vendor != "postgresql":
        return frozenset()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return frozenset(pid for (pid,) in cursor.fetchall())


def start_asgi_server() -> tuple[AsgiServer, threading.Thread]:
    backends_before = _this_databases_backends()
    server = uvicorn.Server(
        uvicorn.Config(
            "authms.asgi:application",
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=0.2,  # open streams never end on their own: cancel them
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return AsgiServer(f"http://127.0.0.1:{port}", server, backends_before), thread


def stop_asgi_server(running: AsgiServer, thread: threading.Thread) -> None:
    running.stop()
    thread.join(10)
    # The server's pool threads kept their database connections; the test database is about
    # to be flushed (and later dropped), which they must not hold up. Only theirs: while an
    # event loop runs in this thread (Playwright's), Django keeps a second connection per
    # context here, and the one from before the loop must survive for the tests after it.
    if connection.vendor == "postgresql":
        opened = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> ALL(%s)"
        before = list(running.backends_before)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_terminate_backend(pid) {opened}", [before])
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # terminating is asynchronous
                cursor.execute(f"SELECT count(*) {opened}", [before])
                if cursor.fetchone()[0] == 0:
                    break
                time.sleep(0.05)


@dataclass
class Event:
    name: str
    data: object
    id: str | None = None


@dataclass
class EventStream:
    """Reads one stream in a thread; `next()` hands over its events in order."""

    status: int = 0
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    comments: list[str] = field(default_factory=list)
    _events: queue.Queue = field(default_factory=queue.Queue)
    _opened: threading.Event = field(default_factory=threading.Event)
    _response: httpx.Response | None = None

    def next(self, timeout: float = 3.0, name: str | None = None) -> Event:
        """The next event (of that name, skipping others); fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {name or 'event'} within {timeout}s")
            if name is None or event.name == name:
                return event

    def quiet(self, seconds: float) -> list[Event]:
        """Whatever arrives in the next `seconds` (expected: nothing)."""
        time.sleep(seconds)
        arrived = []
        while not self._events.empty():
            arrived.append(self._events.get_nowait())
        return arrived

    def close(self):
        if self._response is not None:
            self._response.close()


def open_stream(url: str, headers: dict | None = None) -> EventStream:
    stream = EventStream()

    def read():
        with httpx.Client(timeout=httpx.Timeout(10.0, read=60.0)) as client:
            with client.stream("GET", url, headers=headers or {}) as response:
                stream.status, stream.headers = response.status_code, dict(response.headers)
                if response.status_code != 200:
                    stream.body = response.read()
                    stream._opened.set()
                    return
                stream._response = response
                stream._opened.set()
                try:
                    _parse(response.iter_lines(), stream)
                except (httpx.HTTPError, httpx.StreamClosed):
                    return  # closed by the test or by the server

    threading.Thread(target=read, name="sse-reader", daemon=True).start()
    if not stream._opened.wait(10):
        pytest.fail("the stream did not answer")
    return stream


def _parse(lines, stream: EventStream) -> None:
    fields: dict = {}
    for line in lines:
        if line.startswith(":"):
            stream.comments.append(line)
        elif line == "":
            if "event" in fields:
                stream._events.put(
                    Event(fields["event"], json.loads(fields.get("data", "null")), fields.get("id"))
                )
            fields = {}
        else:
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
