"""A fake Firebase Cloud Messaging HTTP v1 API and Google OAuth token endpoint, as documented
(../shared/design/PUSH.md §1, §6).

`POST /token` is the service account's `token_uri`: it requires the JWT-bearer grant and
verifies the RS256 assertion with the test service account's public key (issuer, scope, and
`aud` = https://oauth2.googleapis.com/token, constant whatever the token URI), then issues
`fake-<n>` access tokens. `POST /v1/projects/<project>/messages:send` requires a bearer token it
issued and not revoked (else 401 UNAUTHENTICATED), exactly one target, string-only `data` (else
400 with a google.rpc.BadRequest detail), an `android.ttl` like "3600s" of at most 28 days and a
payload of at most 4,096 bytes; it answers `{"name": "projects/<p>/messages/<n>"}`.

Error injection per token (`fcm.errors[token] = "UNREGISTERED" | "INVALID_ARGUMENT" |
"SENDER_ID_MISMATCH" | "THIRD_PARTY_AUTH_ERROR" | "QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL"`),
`retry_after` for the 429/503 answers, `delay` seconds before answering a send, and the shared
fault switches of FakeGateway. Every accepted message is kept (`messages`).
"""

import json
import re
import threading
import time
from urllib.parse import parse_qs

import jwt

from tests.fakes.gateway import FakeGateway

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TTL = re.compile(r"^\d+(\.\d{1,9})?s$")
MAX_TTL_SECONDS = 2_419_200
MAX_PAYLOAD_BYTES = 4096

ERRORS = {  # errorCode → (HTTP status, canonical status, message)
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
}


class FakeFcm(FakeGateway):
    def __init__(self, *, project_id: str, client_email: str, public_key_pem: bytes, seed: int = 7):
        super().__init__(seed=seed)
        self.project_id, self.client_email, self.public_key = project_id, client_email, public_key_pem
        self.tokens_issued: list[str] = []
        self.revoked: set[str] = set()
        self.messages: list[dict] = []
        self.errors: dict[str, str] = {}
        self.retry_after: str | None = None
        self.delay = 0.0
        self.expires_in = 3599
        self.sends = 0
        self._store_lock = threading.Lock()

    def delivered_tokens(self) -> list[str]:
        return [message["token"] for message in self.messages]

    def handle(self, handler, raw: bytes):
        path = handler.path.split("?")[0]
        if path == "/token":
            return self._token(raw.decode())
        if path == f"/v1/projects/{self.project_id}/messages:send":
            return self._send(handler, raw)
        return 404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}

    def _token(self, form: str):
        fields = {name: values[0] for name, values in parse_qs(form).items()}
        if fields.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(fields.get("assertion", ""), self.public_key, algorithms=["RS256"],
                                audience=GOOGLE_TOKEN_AUDIENCE, issuer=self.client_email)  # fmt: skip
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if SCOPE not in claims.get("scope", "").split():
            return 400, {"error": "invalid_scope"}
        with self._lock:
            token = f"fake-{len(self.tokens_issued) + 1}"
            self.tokens_issued.append(token)
        return 200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}

    def _send(self, handler, raw: bytes):
        bearer = handler.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.tokens_issued or bearer in self.revoked:
            return 401, _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if len(raw) > MAX_PAYLOAD_BYTES + 2048:  # the envelope around the message
            return 400, _bad_request("message", "Message is too big")
        try:
            message = json.loads(raw)["message"]
        except (ValueError, KeyError, TypeError):
            return 400, _bad_request("message", "Invalid JSON payload received.")
        problem = _validate(message)
        if problem:
            return 400, _bad_request(*problem)
        if self.delay:
            time.sleep(self.delay)
        code = self.errors.get(message["token"])
        if code:
            status, canonical, text = ERRORS[code]
            body = _error(status, canonical, text, code)
            if status in (429, 503) and self.retry_after:
                self.reply(handler, status, body, {"Retry-After": self.retry_after})
                return None
            return status, body

        def store():
            with self._store_lock:
                self.sends += 1
                self.messages.append(message)
                return 200, {"name": f"projects/{self.project_id}/messages/{self.sends}"}

        return self.faulty(handler, store)


def _validate(message: dict) -> tuple[str, str] | None:
    targets = [key for key in ("token", "topic", "condition", "fid") if key in message]
    if len(targets) != 1:
        return "message", "Exactly one of token, topic, condition or fid must be set."
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "message.data", "Invalid value at 'message.data': values must be strings."
    ttl = message.get("android", {}).get("ttl")
    if ttl is not None and (not TTL.match(ttl) or float(ttl[:-1]) > MAX_TTL_SECONDS):
        return "message.android.ttl", "Invalid duration."
    priority = message.get("android", {}).get("priority", "normal")
    if priority.lower() not in ("normal", "high"):
        return "message.android.priority", "Invalid value."
    size = len(json.dumps({**data, **message.get("notification", {})}, ensure_ascii=False).encode())
    if size > MAX_PAYLOAD_BYTES:
        return "message", "Message is too big"
    return None


def _error(status: int, canonical: str, message: str, code: str | None = None) -> dict:
    details = (
        [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}] if code else []
    )
    return {"error": {"code": status, "message": message, "status": canonical, "details": details}}


def _bad_request(field: str, description: str) -> dict:
    body = _error(400, "INVALID_ARGUMENT", description)
    body["error"]["details"] = [
        {"@type": "type.googleapis.com/google.rpc.BadRequest",
         "fieldViolations": [{"field": field, "description": description}]}
    ]  # fmt: skip
    return body
