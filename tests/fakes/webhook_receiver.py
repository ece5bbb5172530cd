"""A tenant's webhook receiver: verifies every request with the `standardwebhooks` library
(independent of our signer) against the secrets it is given, records what came, and answers
from a script.

`script` is a list of answers for the next requests, each a status code or ("sleep", s) or
("redirect", url); when it runs out, `default` (200) answers. `received` keeps every request
(id, timestamp, signatures, raw body, whether one of the secrets verified it).
"""

import threading
import time
from dataclasses import dataclass

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes.gateway import FakeGateway


@dataclass
class Request:
    webhook_id: str
    timestamp: int
    signatures: list[str]
    body: bytes
    verified_by: list[int]  # indexes of `secrets` that verify it
    headers: dict[str, str]


class WebhookReceiver(FakeGateway):
    def __init__(self, secrets: list[str] | None = None):
        super().__init__()
        self.secrets = list(secrets or [])
        self.script: list = []
        self.default = 200
        self.received: list[Request] = []
        self._lock2 = threading.Lock()

    def handle(self, handler, body):
        headers = {name.lower(): value for name, value in handler.headers.items()}
        verified = []
        for index, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(index)
            except WebhookVerificationError:
                pass
        with self._lock2:
            self.received.append(
                Request(
                    webhook_id=headers.get("webhook-id", ""),
                    timestamp=int(headers.get("webhook-timestamp", "0") or 0),
                    signatures=headers.get("webhook-signature", "").split(),
                    body=body,
                    verified_by=verified,
                    headers=headers,
                )
            )
            answer = self.script.pop(0) if self.script else self.default
        if isinstance(answer, tuple) and answer[0] == "sleep":
            time.sleep(answer[1])
            return 200, {"ok": True}
        if isinstance(answer, tuple) and answer[0] == "redirect":
            self.reply(handler, 302, {}, headers={"Location": answer[1]})
            return None
        if isinstance(answer, tuple):  # (status, {header: value})
            self.reply(handler, answer[0], {"ok": False}, headers=answer[1])
            return None
        return answer, {"ok": 200 <= answer < 300}

    def ids(self) -> list[str]:
        return [request.webhook_id for request in self.received]
