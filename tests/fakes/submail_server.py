"""A fake SUBMAIL API on 127.0.0.1 for tests and local runs (docs/SUBMAIL.md).

Implements service/timestamp, sms/send, sms/xsend, sms/multisend, sms/multixsend and
sms/log with SUBMAIL's response shapes; verifies signatures (wrong → error 108) and the
timestamp window (error 152); serves sms/log from a per-app cache for a minute, as
SUBMAIL does. Stored messages can be flipped to delivered/dropped and pushed to a
SUBHOOK URL. Faults can be injected: HTTP 500, slow answers, dropped connections (each
before or after the messages are stored), and per-recipient errors.

Run it by hand for local experiments:

    .venv/bin/python -m tests.fakes.submail_server --port 9000 --appid 10001 --appkey secret
"""

import argparse
import hashlib
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl

import requests

from tests.fakes.gateway import FakeGateway, serve_until_interrupted

TIMESTAMP_WINDOW_SECONDS = 6


def expected_signature(params: dict, appkey: str) -> str:
    """SUBMAIL's rule, written from docs/SUBMAIL.md §1/§6 and kept apart from the client's
    `sign()` so a bug there cannot pass here: the appkey itself for `normal`; otherwise the
    hex digest of appid+appkey + "k=v&…" (keys sorted, raw values; never `signature` or `tag`;
    with sign_version=2 not `content`, `vars` or `multi` either) + appid+appkey."""
    sign_type = params.get("sign_type") or "normal"
    if sign_type == "normal":
        return appkey
    skipped = {"signature", "tag"}
    if params.get("sign_version") == "2":
        skipped |= {"content", "vars", "multi"}
    pairs = "&".join(f"{key}={params[key]}" for key in sorted(params) if key not in skipped)
    text = f"{params['appid']}{appkey}{pairs}{params['appid']}{appkey}".encode()
    return (hashlib.sha1(text) if sign_type == "sha1" else hashlib.md5(text)).hexdigest()  # noqa: S324


LOG_CACHE_SECONDS = 60


@dataclass
class StoredMessage:
    send_id: str
    appid: str
    to: str
    content: str
    template_id: str
    send_at: int
    status: str = "pending"  # pending | delivered | dropped
    report_state: str = "pending"
    dropped_reason: str = ""
    report_at: int | None = None
    tag: str = ""  # echoed in SUBHOOK pushes, as SUBMAIL does


class FakeSubmail(FakeGateway):
    def __init__(self, apps: dict[str, str], *, seed: int = 7, subhook_url: str = "", subhook_key: str = ""):
        super().__init__(seed=seed)
        self.apps = dict(apps)  # appid → appkey
        self.messages: dict[str, StoredMessage] = {}
        self.requests: list[tuple[str, dict]] = []  # (path, params) of every call
        self.subhook_url, self.subhook_key = subhook_url, subhook_key
        # When set, every accepted message is announced with a `request` push (as a SUBHOOK
        # subscribed to that event does), from a background thread, in acceptance order.
        self.push_requests = False
        self._pushes: queue.Queue = queue.Queue()
        self.pushes_refused = 0  # pushes the service did not answer with a 2xx
        threading.Thread(target=self._push_forever, daemon=True).start()
        self.clock_skew = 0  # seconds added to the server clock
        self._log_cache: dict[str, tuple[float, dict]] = {}

    # --- what tests look at and change ---

    def deliveries(self) -> list[tuple[str, str]]:
        """(to, content) of every message SUBMAIL accepted, duplicates included."""
        return [(m.to, m.content) for m in self.messages.values()]

    def calls(self, path: str) -> int:
        return sum(1 for called, _ in self.requests if called == path)

    def report(self, send_ids, status: str, *, reason: str = "空号/停机", push: bool = False):
        """Flip messages to delivered or dropped, as a carrier report would; optionally push SUBHOOK."""
        now = int(time.time())
        for send_id in send_ids:
            message = self.messages[send_id]
            message.status, message.report_at = status, now
            message.report_state = "DELIVRD" if status == "delivered" else "mk:0012"
            message.dropped_reason = "" if status == "delivered" else reason
            if push:
                self.push_subhook(
                    status,
                    address=message.to,
                    send_id=send_id,
                    app=message.appid,
                    report=message.report_state,
                    **({"tag": message.tag} if message.tag else {}),
                )

    def deliver_after(self, seconds: float) -> None:
        """Be the carriers of a healthy network: from now on every accepted message is reported
        delivered `seconds` after SUBMAIL accepted it (for long runs such as `make chaos`, where
        silence would rightly count against SUBMAIL's health)."""

        def carry():
            while True:
                time.sleep(1)
                due = time.time() - seconds
                self.report(
                    [i for i, m in list(self.messages.items()) if m.status == "pending" and m.send_at <= due],
                    "delivered",
                )

        threading.Thread(target=carry, daemon=True).start()

    def _push_forever(self):
        while True:
            fields = self._pushes.get()
            try:
                accepted = self.push_subhook("request", **fields).ok
            except requests.RequestException:
                accepted = False
            if not accepted:  # not retried (SUBMAIL documents no retry): the status sync settles it
                with self._lock:
                    self.pushes_refused += 1

    def push_subhook(self, event: str, **fields) -> requests.Response:
        token = uuid.uuid4().hex
        signature = hashlib.md5(f"{token}{self.subhook_key}".encode()).hexdigest()  # noqa: S324 - SUBMAIL's protocol
        data = {
            "events": event,
            "timestamp": str(int(time.time())),
            "token": token,
            "signature": signature,
            **fields,
        }
        return requests.post(self.subhook_url, data=data, timeout=10)

    # --- HTTP ---

    def handle(self, handler: BaseHTTPRequestHandler, raw: bytes):
        path = handler.path.split("?")[0].strip("/").removesuffix(".json")
        try:
            params = self._parse(raw, handler.headers.get("Content-Type", ""))
        except ValueError:
            return 400, {"status": "error", "code": 307, "msg": "Incorrect json format"}
        with self._lock:
            self.requests.append((path, params))
        if path == "service/timestamp":
            if self.faults.timestamp_503:
                return 503, {"status": "error", "msg": "unavailable"}
            return 200, {"timestamp": int(time.time()) + self.clock_skew}
        routes = {
            "sms/send": self._send,
            "sms/xsend": self._xsend,
            "sms/multisend": self._multisend,
            "sms/multixsend": self._multixsend,
            "sms/log": self._log,
        }
        if path not in routes:
            return 404, {"status": "error", "code": 404, "msg": "not found"}
        error = self._authenticate(params)
        if error:
            return 400, error
        if self.unavailable():
            return 503, {"status": "error", "msg": "service unavailable"}
        answer = self.faulty(handler, lambda: routes[path](params))
        return (400 if isinstance(answer, dict) and answer.get("status") == "error" else 200), answer

    @staticmethod
    def _parse(raw: bytes, content_type: str) -> dict:
        if not raw:
            return {}
        if "json" in content_type:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("body must be an object")
            return {key: value if isinstance(value, str) else str(value) for key, value in data.items()}
        return dict(parse_qsl(raw.decode()))

    def _authenticate(self, params: dict) -> dict | None:
        appid = params.get("appid", "")
        if appid not in self.apps:
            return {"status": "error", "code": 101, "msg": "Incorrect APP ID"}
        appkey = self.apps[appid]
        sign_type = params.get("sign_type", "normal") or "normal"
        if sign_type not in ("normal", "md5", "sha1"):
            return {"status": "error", "code": 107, "msg": "Invalid sign_type"}
        if not params.get("signature"):
            return {"status": "error", "code": 111, "msg": "Empty signature"}
        if sign_type != "normal":
            try:
                skew = abs(int(params.get("timestamp", "")) - (time.time() + self.clock_skew))
            except ValueError:
                return {"status": "error", "code": 151, "msg": "timestamp error"}
            if skew > TIMESTAMP_WINDOW_SECONDS:
                return {"status": "error", "code": 152, "msg": "Invalid timestamp"}
        if params["signature"] != expected_signature(params, appkey):
            return {"status": "error", "code": 108, "msg": "Invalid signature"}
        return None

    # --- endpoints ---

    def _accept(self, appid: str, to: str, content: str, template_id: str = "", tag: str = "") -> dict:
        code = self.faults.error_numbers.get(to)
        if code:
            return {"status": "error", "code": code, "msg": "error sms"}
        send_id = uuid.uuid4().hex
        with self._lock:
            self.messages[send_id] = StoredMessage(
                send_id, appid, to, content, template_id, int(time.time()), tag=tag
            )
        if self.push_requests:
            self._pushes.put(
                {"address": to, "send_id": send_id, "app": appid, **({"tag": tag} if tag else {})}
            )
        return {"status": "success", "send_id": send_id, "fee": 1}

    @staticmethod
    def _content_error(content: str) -> dict | None:
        if not content:
            return {"status": "error", "code": 403, "msg": "content empty"}
        if not content.startswith("【"):
            return {"status": "error", "code": 401, "msg": "signature empty"}
        if len(content) > 1000:
            return {"status": "error", "code": 404, "msg": "content too long"}
        return None

    def _send(self, params):
        error = self._content_error(params.get("content", ""))
        if error:
            return error
        return {
            **self._accept(
                params["appid"], params.get("to", ""), params["content"], tag=params.get("tag", "")
            ),
            "sms_credits": "9999",
        }

    def _xsend(self, params):
        if not params.get("project"):
            return {"status": "error", "code": 305, "msg": "Project ID cannot be empty"}
        variables = json.loads(params.get("vars") or "{}")
        content = f"[{params['project']}] {json.dumps(variables, ensure_ascii=False, sort_keys=True)}"
        return self._accept(
            params["appid"], params.get("to", ""), content, params["project"], params.get("tag", "")
        )

    def _multi(self, params) -> list[dict] | dict:
        try:
            multi = json.loads(params.get("multi") or "")
        except ValueError:
            return {"status": "error", "code": 307, "msg": "Incorrect json format", "json_decoding_error": 4}
        if not isinstance(multi, list) or not multi:
            return {"status": "error", "code": 410, "msg": "empty multi"}
        return multi

    def _multisend(self, params):
        error = self._content_error(params.get("content", ""))
        multi = self._multi(params)
        if error or isinstance(multi, dict):
            return error or multi
        answers = []
        for item in multi:
            content = params["content"]
            for key, value in (item.get("vars") or {}).items():
                content = content.replace(f"@var({key})", str(value))
            answers.append(
                self._accept(params["appid"], item.get("to", ""), content, tag=params.get("tag", ""))
            )
        return answers

    def _multixsend(self, params):
        if not params.get("project"):
            return {"status": "error", "code": 305, "msg": "Project ID cannot be empty"}
        multi = self._multi(params)
        if isinstance(multi, dict):
            return multi
        answers = []
        for item in multi:
            content = f"[{params['project']}] {json.dumps(item.get('vars') or {}, ensure_ascii=False, sort_keys=True)}"
            answer = self._accept(
                params["appid"], item.get("to", ""), content, params["project"], params.get("tag", "")
            )
            answers.append({**answer, "to": item.get("to", "")} if answer["status"] == "success" else answer)
        return answers

    def _log(self, params):
        appid = params["appid"]
        cached = self._log_cache.get(appid)
        if cached and time.monotonic() - cached[0] < LOG_CACHE_SECONDS:
            return cached[1]
        now = int(time.time())
        start = int(params.get("start_date") or now - 86400)
        end = int(params.get("end_date") or now)
        rows, offset = int(params.get("rows") or 50), int(params.get("offset") or 0)
        matching = sorted(
            (m for m in self.messages.values() if m.appid == appid and start <= m.send_at <= end),
            key=lambda m: (m.send_at, m.send_id),
        )
        data = [self._log_row(m) for m in matching[offset : offset + rows]]
        answer = {
            "status": "success",
            "start_date": start,
            "end_date": end,
            "total": len(matching),
            "offset": offset,
            "results": len(data),
            "data": data,
        }
        self._log_cache[appid] = (time.monotonic(), answer)
        return answer

    @staticmethod
    def _log_row(message: StoredMessage) -> dict:
        row = {
            "sendID": message.send_id,
            "to": message.to,
            "appid": message.appid,
            "template_id": message.template_id,
            "sms_signature": message.content[: message.content.find("】") + 1],
            "sms_content": message.content,
            "fee": 0 if message.status == "dropped" else 1,
            "status": message.status,
            "report_state": message.report_state,
            "location": "上海 上海",
            "mobile_type": "中国移动",
            "ip_address": "127.0.0.1",
            "send_at": message.send_at,
            "sent_at": message.send_at,
            "report_at": message.report_at or message.send_at,
        }
        if message.status == "dropped":
            row["dropped_reason"] = message.dropped_reason
        return row

    def forget_log_cache(self):
        """Tests that step through minutes without waiting them out."""
        self._log_cache.clear()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--appid", default="10001")
    parser.add_argument("--appkey", default="fake-appkey")
    parser.add_argument("--subhook-url", default="")
    parser.add_argument("--subhook-key", default="")
    args = parser.parse_args()
    fake = FakeSubmail({args.appid: args.appkey}, subhook_url=args.subhook_url, subhook_key=args.subhook_key)
    fake.start(args.port)
    serve_until_interrupted(
        fake, f"Fake SUBMAIL on {fake.url} (appid {args.appid}, appkey {args.appkey}); Ctrl-C to stop."
    )


if __name__ == "__main__":
    main()
