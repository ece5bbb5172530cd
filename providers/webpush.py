"""Standard Web Push (RFC 8030) to browsers: the payload encrypted for the subscription
(RFC 8291, aes128gcm) and signed for our VAPID key (RFC 8292), with pywebpush and py-vapid.
Facts: ../shared/design/PUSH.md §2.

Each subscription is its own request to its push service, WEBPUSH_CONCURRENCY at a time. TTL
and timeouts are set explicitly (pywebpush defaults to TTL 0 and no timeout). The VAPID JWT is
signed once per push-service origin and reused for an hour (it is valid for 12). Before a
request the endpoint's host is resolved and refused when it lands inside a private network
(the SSRF rule, also checked at registration).

Outcomes: 201 (200/202) accepted → sent; 404/410 the subscription is gone → failed, device
retired; 413 → failed; 429/503 → retried after Retry-After; 400/401/403 (our VAPID headers) →
failed as a configuration fault; other 5xx and no answer after sending → unknown, under the
shared transport rule (providers/http.py).
"""

import ipaddress
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests
from django.conf import settings
from py_vapid import Vapid
from pywebpush import WebPusher

from providers.base import OutgoingMessage, Provider, SendResult, push_notification_json
from providers.http import NOT_PROCESSED_STATUSES, is_internal_address, request_failure, retry_after_seconds

GONE = frozenset({404, 410})
VAPID_REUSE_SECONDS = 3600
VAPID_VALID_SECONDS = 12 * 3600


class WebPushProvider(Provider):
    channels = frozenset({"push"})
    max_batch_size = 500

    def __init__(self):
        self._vapid = Vapid.from_string(private_key=settings.VAPID_PRIVATE_KEY)
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=64, pool_maxsize=settings.WEBPUSH_CONCURRENCY
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._headers_by_origin: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        if not messages:
            return []
        with ThreadPoolExecutor(max_workers=min(settings.WEBPUSH_CONCURRENCY, len(messages))) as pool:
            return list(pool.map(self._send_one, messages))

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        target = message.target
        if not target.get("token"):
            return SendResult.failed("The device is no longer registered.")
        endpoint = target["token"]
        origin = _origin(endpoint)
        if not settings.WEBPUSH_ALLOW_PRIVATE_ENDPOINTS and _resolves_inside(
            urlsplit(endpoint).hostname or ""
        ):
            return SendResult.failed(
                "The subscription's push service resolves to a private address; refused.", target_gone=True
            )
        payload = push_notification_json(
            title=message.subject,
            body=message.body,
            data=message.data,
            link=message.link,
            log_id=message.log_id,
        )
        subscription = {"endpoint": endpoint, "keys": {"p256dh": target["p256dh"], "auth": target["auth"]}}
        try:
            response = WebPusher(subscription, requests_session=self._session).send(
                payload,
                {**self._vapid_headers(origin), "Urgency": "high"},
                ttl=settings.PUSH_TTL_SECONDS,
                content_encoding="aes128gcm",
                timeout=(settings.WEBPUSH_CONNECT_TIMEOUT, settings.WEBPUSH_READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            # Classified by the shared rule, but described without the exception's text: it
            # carries the endpoint URL, which is a secret of the subscription.
            failure = request_failure("the push service", exc)
            if failure.outcome_unknown:
                return SendResult.unknown(f"the push service did not answer ({type(exc).__name__})")
            return SendResult.retry(f"The push service could not be reached ({type(exc).__name__}).")
        return _result(response)

    def _vapid_headers(self, origin: str) -> dict:
        """The VAPID Authorization header for a push service, signed once an hour."""
        now = time.time()
        with self._lock:
            signed_at, headers = self._headers_by_origin.get(origin, (0.0, {}))
            if now - signed_at >= VAPID_REUSE_SECONDS:
                claims = {"aud": origin, "exp": int(now) + VAPID_VALID_SECONDS, "sub": settings.VAPID_SUBJECT}
                headers = self._vapid.sign(claims)
                self._headers_by_origin[origin] = (now, headers)
            return headers


def _result(response: requests.Response) -> SendResult:
    status, text = response.status_code, response.text[:2048]
    if status in (200, 201, 202):
        return SendResult.sent(response.headers.get("Location") or None, text or None)
    if status in GONE:
        return SendResult.failed(f"The push service says the subscription is gone (HTTP {status}).", text,
                                 target_gone=True)  # fmt: skip
    if status in NOT_PROCESSED_STATUSES:
        return SendResult.retry(
            f"The push service answered HTTP {status}.", text, after=retry_after_seconds(response)
        )
    if status >= 500:
        return SendResult.unknown(f"the push service answered HTTP {status}", text)
    if status in (400, 401, 403):
        return SendResult.failed(
            f"The push service refused our VAPID headers or request (HTTP {status}).",
            text,
            provider_fault=True,
        )
    return SendResult.failed(f"The push service refused the message (HTTP {status}).", text)


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def _resolves_inside(host: str) -> bool:
    """True when `host` is, or resolves to, a private, loopback or link-local address."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return False  # unresolvable: the request fails to connect, and is retried
    return any(is_internal_address(ipaddress.ip_address(address.split("%")[0])) for address in addresses)
