"""A fake Postmark email API, as documented at postmarkapp.com/developer/api/email-api.

`POST /email` sends one message, `POST /email/batch` up to 500 (an array in, an array of
per-message results out, HTTP 200 even when some failed), `/email/withTemplate/` and
`/email/batchWithTemplates` the same with a TemplateAlias/TemplateId and TemplateModel. The
`X-Postmark-Server-Token` header must carry the server token (else HTTP 401, ErrorCode 10).
Addresses in `inactive` are refused with ErrorCode 406, as Postmark refuses addresses that
hard-bounced or complained. Accepted messages are kept with their MessageID; the fault
switches of FakeGateway apply to the sending calls.
"""

import argparse
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.fakes.gateway import FakeGateway, serve_until_interrupted

MAX_BATCH = 500


@dataclass
class StoredEmail:
    message_id: str
    to: str
    subject: str
    text: str
    template: str = ""
    model: dict = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


class FakePostmark(FakeGateway):
    def __init__(self, server_token: str, *, seed: int = 7):
        super().__init__(seed=seed)
        self.server_token = server_token
        self.emails: list[StoredEmail] = []
        self.requests: list[str] = []  # the path of every call
        self.inactive: set[str] = set()
        self._store_lock = threading.Lock()

    def deliveries(self) -> list[str]:
        """The address of every email accepted, duplicates included."""
        return [email.to for email in self.emails]

    def calls(self, path: str) -> int:
        return sum(1 for called in self.requests if called == path)

    def handle(self, handler, raw: bytes):
        path = handler.path.split("?")[0].strip("/")
        with self._lock:
            self.requests.append(path)
        if handler.headers.get("X-Postmark-Server-Token") != self.server_token:
            return 401, {
                "ErrorCode": 10,
                "Message": "The Server Token you provided in the X-Postmark-Server-Token request header was invalid.",
            }
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return 422, {"ErrorCode": 402, "Message": "Received invalid JSON input."}
        routes = {
            "email": lambda: self._send(body),
            "email/withTemplate": lambda: self._send(body),
            "email/batch": lambda: self._batch(body),
            "email/batchWithTemplates": lambda: self._batch(
                body.get("Messages") if isinstance(body, dict) else None
            ),
        }
        if path not in routes:
            return 404, {"ErrorCode": 404, "Message": "Not found."}
        if self.unavailable():
            return 503, {"ErrorCode": 100, "Message": "Service unavailable."}
        answer = self.faulty(handler, routes[path])
        return (422 if isinstance(answer, dict) and answer["ErrorCode"] else 200), answer

    def _batch(self, messages):
        if not isinstance(messages, list) or not 0 < len(messages) <= MAX_BATCH:
            return {"ErrorCode": 300, "Message": f"Invalid batch: 1 to {MAX_BATCH} messages."}
        return [self._send(message) for message in messages]

    def _send(self, message) -> dict:
        if not isinstance(message, dict) or not message.get("To") or not message.get("From"):
            return {"ErrorCode": 300, "Message": "Invalid 'To' address: ''."}
        to = message["To"]
        if to.lower() in self.inactive:
            return {
                "ErrorCode": 406,
                "Message": "You tried to send to a recipient that has been marked as inactive.\n"
                f"Found inactive addresses: {to.lower()}.\n"
                "Inactive recipients are ones that have generated a hard bounce or a spam complaint. ",
            }
        email = StoredEmail(
            message_id=str(uuid.uuid4()),
            to=to,
            subject=message.get("Subject", ""),
            text=message.get("TextBody", ""),
            template=str(message.get("TemplateAlias") or message.get("TemplateId") or ""),
            model=message.get("TemplateModel") or {},
            headers={item["Name"]: item["Value"] for item in message.get("Headers") or []},
            metadata=message.get("Metadata") or {},
        )
        with self._store_lock:
            self.emails.append(email)
        return {
            "To": to,
            "SubmittedAt": datetime.now(UTC).isoformat(),
            "MessageID": email.message_id,
            "ErrorCode": 0,
            "Message": "OK",
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--server-token", default="fake-server-token")
    args = parser.parse_args()
    fake = FakePostmark(args.server_token).start(args.port)
    serve_until_interrupted(
        fake, f"Fake Postmark on {fake.url} (server token {args.server_token}); Ctrl-C to stop."
    )


if __name__ == "__main__":
    main()
