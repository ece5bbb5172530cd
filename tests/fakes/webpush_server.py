"""A fake Web Push service (RFC 8030) with the browser's side of RFC 8291 and RFC 8292 built in.

`subscribe(vapid_public_key)` plays a browser subscribing: it makes a P-256 key pair and an
auth secret and returns `PushSubscription.toJSON()` with an endpoint on this fake.
`POST /push/<id>` requires `TTL` and `Content-Encoding: aes128gcm` (else 400), an
`Authorization: vapid t=<JWT>,k=<key>` whose key is the one the subscription was made with
(else 403) and whose ES256 JWT verifies with it, for `aud` = this fake's origin, `exp` within
24 h and `sub` mailto: or https: (else 401); a body of at most 4,096 bytes (else 413). It then
decrypts the body with the subscription's private key and auth secret (http_ece) and keeps the
plaintext: a payload our provider encrypted wrongly never counts as delivered. Answers 201 with a
Location. Per subscription, `errors[id]` injects 404, 410, 413, 429 or 503 (with `retry_after`).
"""

import base64
import json
import threading
import time
from dataclasses import dataclass

import http_ece
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.fakes.gateway import FakeGateway

MAX_BODY = 4096


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Subscription:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    vapid_key: str  # the applicationServerKey the browser subscribed with


@dataclass
class Received:
    subscription_id: str
    payload: dict
    ttl: int
    urgency: str


class FakeWebPush(FakeGateway):
    def __init__(self, *, seed: int = 7):
        super().__init__(seed=seed)
        self.subscriptions: dict[str, Subscription] = {}
        self.received: list[Received] = []
        self.errors: dict[str, int] = {}
        self.retry_after: str | None = None
        self.refused: list[tuple[int, str]] = []  # (status, why) of every refused request
        self._count = 0
        self._store_lock = threading.Lock()

    def subscribe(self, vapid_public_key: str) -> dict:
        key = ec.generate_private_key(ec.SECP256R1())
        auth = bytes(self._random.getrandbits(8) for _ in range(16))
        with self._lock:
            subscription_id = f"s{len(self.subscriptions) + 1}"
            self.subscriptions[subscription_id] = Subscription(key, auth, vapid_public_key)
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {
            "endpoint": f"{self.url}/push/{subscription_id}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(auth)},
        }

    def handle(self, handler, raw: bytes):
        path = handler.path.split("?")[0]
        subscription = (
            self.subscriptions.get(path.removeprefix("/push/")) if path.startswith("/push/") else None
        )
        if subscription is None:
            return self._refuse(404, "no such subscription")
        subscription_id = path.removeprefix("/push/")
        if not handler.headers.get("TTL", "").isdigit():
            return self._refuse(400, "TTL header missing")
        if handler.headers.get("Content-Encoding") != "aes128gcm":
            return self._refuse(400, "Content-Encoding must be aes128gcm")
        problem = self._vapid_problem(handler.headers.get("Authorization", ""), subscription)
        if problem:
            return self._refuse(*problem)
        if len(raw) > MAX_BODY:
            return self._refuse(413, "payload too large")
        if status := self.errors.get(subscription_id):
            body = {
                "code": status,
                "errno": 102 if status in (404, 410) else 999,
                "error": "injected",
                "message": "injected",
            }
            if status in (429, 503) and self.retry_after:
                self.reply(handler, status, body, {"Retry-After": self.retry_after})
                return None
            return status, body
        try:
            plaintext = http_ece.decrypt(raw, private_key=subscription.private_key, auth_secret=subscription.auth,
                                         version="aes128gcm")  # fmt: skip
            payload = json.loads(plaintext)
        except Exception as exc:  # noqa: BLE001 - anything undecryptable is our provider's bug
            return self._refuse(400, f"could not decrypt: {exc!r}")

        def store():
            with self._store_lock:
                self._count += 1
                self.received.append(
                    Received(
                        subscription_id,
                        payload,
                        int(handler.headers["TTL"]),
                        handler.headers.get("Urgency", ""),
                    )
                )
                location = f"{self.url}/m/{self._count}"
            self.reply(handler, 201, {}, {"Location": location})

        self.faulty(handler, store)
        return None

    def _vapid_problem(self, header: str, subscription: Subscription) -> tuple[int, str] | None:
        scheme, _, params = header.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if scheme.lower() != "vapid" or "t" not in fields or "k" not in fields:
            return 401, "Authorization must be vapid t=…, k=…"
        if fields["k"] != subscription.vapid_key:
            return 403, "not the key this subscription was made with"
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
            claims = jwt.decode(fields["t"], public, algorithms=["ES256"], audience=self.url,
                                options={"require": ["exp", "aud", "sub"]})  # fmt: skip
        except (jwt.PyJWTError, ValueError) as exc:
            return 401, f"VAPID JWT refused: {exc}"
        if claims["exp"] > time.time() + 24 * 3600:
            return 401, "exp more than 24 hours ahead"
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return 401, "sub must be mailto: or https:"
        return None

    def _refuse(self, status: int, why: str):
        with self._lock:
            self.refused.append((status, why))
        return status, {"code": status, "errno": 0, "error": "refused", "message": why}
