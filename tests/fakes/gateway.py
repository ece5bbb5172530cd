"""What every fake gateway shares: a threaded HTTP server on 127.0.0.1 and fault injection.

A subclass answers `handle(method, path, query, headers, body) -> (status, json_body)` and
calls `self.faulty(process)` around the part of a request that stores messages, so a fault
strikes before or after they are stored, as a real gateway's would.
"""

import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Faults:
    """Probabilities per request, and where a fault strikes relative to storing messages."""

    http_500: float = 0.0
    http_503: float = 0.0  # always before processing: "not processed, try later"
    timestamp_503: bool = False  # an auxiliary clock lookup answers 503 (SUBMAIL)
    slow: float = 0.0
    reset: float = 0.0
    slow_seconds: float = 2.0
    after_processing: bool = True  # the worst case: the gateway sent it, we never hear so
    error_numbers: dict[str, object] = field(default_factory=dict)  # to → per-recipient error code


class _Server(ThreadingHTTPServer):
    # Clients open dozens of connections at once (FCM's concurrent sends): the default
    # listen backlog of 5 would refuse some, which a real gateway does not.
    request_queue_size = 128


class Reset(Exception):
    """Drop the connection without an answer."""


class Answered(Exception):
    """An answer was already written (a fault's 500)."""


class FakeGateway:
    def __init__(self, *, seed: int = 7):
        self.faults = Faults()
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real gateways' endpoints
            disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stall

            def setup(self):
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self):
                with fake._lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def do_GET(self):
                fake._serve(self)

            def do_POST(self):
                fake._serve(self)

            def log_message(self, *args):
                pass

        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self):
        """Down like a real outage: no new connections, and the kept-alive ones cut."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, object] | None:
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        self._handler = handler
        try:
            answer = self.handle(handler, body)
        except Reset:
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        except Answered:
            return
        if answer is not None:
            self.reply(handler, *answer)

    def unavailable(self) -> bool:
        """Roll for an HTTP 503 before processing."""
        return self._random.random() < self.faults.http_503

    def faulty(self, handler, process):
        """Run `process()` (which stores messages) with the injected fault around it."""
        fault = self._pick_fault()
        if fault and not self.faults.after_processing:
            self._strike(handler, fault)
        answer = process()
        if fault:
            self._strike(handler, fault)
        return answer

    @staticmethod
    def reply(handler, status: int, body, headers: dict[str, str] | None = None):
        payload = json.dumps(body, ensure_ascii=False).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _pick_fault(self) -> str | None:
        roll = self._random.random()
        for name in ("http_500", "slow", "reset"):
            chance = getattr(self.faults, name)
            if roll < chance:
                return name
            roll -= chance
        return None

    def _strike(self, handler, fault: str):
        if fault == "http_500":
            self.reply(handler, 500, {"status": "error", "code": 500, "msg": "internal error"})
            raise Answered
        if fault == "slow":
            time.sleep(self.faults.slow_seconds)
        if fault == "reset":
            raise Reset


def serve_until_interrupted(fake: FakeGateway, banner: str) -> None:
    """For running a fake by hand (`python -m tests.fakes.<name>_server`)."""
    print(banner)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
