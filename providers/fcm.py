"""Firebase Cloud Messaging HTTP v1: Android, and iOS through FCM's APNs block.

One request per device token (FCM's batch send is gone), sent concurrently over one shared
httpx client (HTTP/2 streams against Google; HTTP/1.1 keep-alive against a plain-http fake).
The OAuth access token comes from the service account through google-auth, cached until it
nears expiry, and refreshed under a lock: google-auth's refresh is not thread-safe, and one
refresh serves every concurrent send. Facts: ../shared/design/PUSH.md §1.

Outcomes follow the shared transport rule (providers/http.py) plus FCM's error codes:
UNREGISTERED, an invalid-token INVALID_ARGUMENT and SENDER_ID_MISMATCH fail the message and
retire the device (`target_gone`); a BadRequest about the payload fails it and keeps the
device; QUOTA_EXCEEDED and UNAVAILABLE are retried after Retry-After (QUOTA_EXCEEDED at least
60 s); our own expired access token (401 without an FCM code) is refreshed and the message retried.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import google.auth.exceptions
import google.auth.transport.requests
import httpx
import requests
from django.conf import settings
from django.utils import timezone
from google.oauth2 import service_account

from providers.base import OutgoingMessage, Provider, ProviderError, SendResult
from providers.http import NOT_PROCESSED_STATUSES, retry_after_seconds

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
GONE = {"UNREGISTERED", "SENDER_ID_MISMATCH"}
QUOTA_WAIT_SECONDS = 60


class _TimedRequest(google.auth.transport.requests.Request):
    """google-auth's refresh call, always with our timeouts (its default is 120 s)."""

    def __init__(self, session, timeout):
        super().__init__(session)
        self._timeout = timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        return super().__call__(url, method, body, headers, timeout=self._timeout, **kwargs)


class FcmProvider(Provider):
    channels = frozenset({"push"})
    max_batch_size = 500

    def __init__(self):
        info = _service_account_info()
        self.project_id = info["project_id"]
        self._credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        self._token_lock = threading.Lock()
        timeouts = (settings.FCM_CONNECT_TIMEOUT, settings.FCM_READ_TIMEOUT)
        self._token_request = _TimedRequest(requests.Session(), timeouts)
        # At most FCM_CONCURRENCY requests in flight per process (the dispatch loops share this
        # provider), and as many pooled connections: a request never waits inside httpcore's
        # pool, where a connection assigned to a waiting request can be closed under it
        # (encode/httpcore#1110: ReadError or a hang, i.e. "outcome unknown" for a push that
        # never left).
        self._in_flight = threading.BoundedSemaphore(settings.FCM_CONCURRENCY)
        self._client = httpx.Client(
            http2=True,
            timeout=httpx.Timeout(settings.FCM_READ_TIMEOUT, connect=settings.FCM_CONNECT_TIMEOUT),
            limits=httpx.Limits(
                max_connections=settings.FCM_CONCURRENCY, max_keepalive_connections=settings.FCM_CONCURRENCY
            ),
        )
        self._url = f"{settings.FCM_BASE_URL.rstrip('/')}/v1/projects/{self.project_id}/messages:send"

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        if not messages:
            return []
        token = self._access_token()  # once per call; a ProviderError answers every message
        with ThreadPoolExecutor(max_workers=min(settings.FCM_CONCURRENCY, len(messages))) as pool:
            return list(pool.map(lambda message: self._send_one(message, token), messages))

    def _access_token(self) -> str:
        with self._token_lock:
            if not self._credentials.valid:
                try:
                    self._credentials.refresh(self._token_request)
                except google.auth.exceptions.RefreshError as exc:
                    raise ProviderError(
                        f"FCM credentials were refused: {exc}", permanent=True, provider_fault=True
                    ) from exc
                except google.auth.exceptions.TransportError as exc:  # no message went anywhere
                    raise ProviderError(
                        f"Google's token endpoint could not be reached: {exc}", permanent=False
                    ) from exc
            return self._credentials.token

    def _forget_token(self, token: str) -> None:
        """Our access token was refused (revoked, expired early): the next call fetches one."""
        with self._token_lock:
            if self._credentials.token == token:
                self._credentials.token = None

    def _send_one(self, message: OutgoingMessage, token: str) -> SendResult:
        device_token = message.target.get("token")
        if not device_token:
            return SendResult.failed("The device is no longer registered.")
        try:
            with self._in_flight:
                response = self._client.post(
                    self._url,
                    content=json.dumps(
                        {"message": self._message(message, device_token)}, ensure_ascii=False
                    ).encode(),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json; charset=UTF-8",
                    },
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return SendResult.retry(f"FCM could not be reached: {type(exc).__name__}")
        except httpx.HTTPError as exc:  # sent, and no answer: FCM may have accepted it
            return SendResult.unknown(f"FCM did not answer: {type(exc).__name__}")
        return self._result(response, token)

    def _message(self, message: OutgoingMessage, device_token: str) -> dict:
        ttl = settings.PUSH_TTL_SECONDS
        notification = {"body": message.body, **({"title": message.subject} if message.subject else {})}
        data = {**message.data, "log_id": message.log_id, **({"link": message.link} if message.link else {})}
        return {
            "token": device_token,
            "notification": notification,
            "data": data,
            "android": {"priority": "HIGH", "ttl": f"{ttl}s"},
            "apns": {
                "headers": {
                    "apns-priority": "10",
                    "apns-expiration": str(int(timezone.now().timestamp()) + ttl),
                },
                "payload": {"aps": {"sound": "default"}},
            },
        }

    def _result(self, response: httpx.Response, token: str) -> SendResult:
        status = response.status_code
        text = response.text[:2048]
        if status == 200:
            try:
                return SendResult.sent(response.json()["name"], text)
            except (ValueError, KeyError, TypeError):
                return SendResult.unknown(f"unreadable FCM answer (HTTP {status})", text)
        code, message = _fcm_error(response)
        if status in NOT_PROCESSED_STATUSES:  # QUOTA_EXCEEDED, UNAVAILABLE: not processed
            wait = retry_after_seconds(response) or (QUOTA_WAIT_SECONDS if code == "QUOTA_EXCEEDED" else None)
            return SendResult.retry(f"FCM {code or status}: {message}", text, after=wait)
        if status >= 500:
            return SendResult.unknown(f"FCM answered HTTP {status}", text)
        if code in GONE or (code == "INVALID_ARGUMENT" and "registration token" in message.lower()):
            return SendResult.failed(
                f"FCM {code}: the device's token is no longer valid.", text, target_gone=True
            )
        if status == 401 and not code:  # our access token, not the message
            self._forget_token(token)
            return SendResult.retry("FCM refused our access token; a new one is fetched.", text, after=0)
        return SendResult.failed(
            f"FCM {code or status}: {message}",
            text,
            provider_fault=code == "THIRD_PARTY_AUTH_ERROR" or status == 403,
        )


def _fcm_error(response: httpx.Response) -> tuple[str, str]:
    """(FCM errorCode or "", message) of an error answer."""
    try:
        error = response.json()["error"]
        codes = [d.get("errorCode", "") for d in error.get("details", []) if d.get("@type") == FCM_ERROR]
        return (codes[0] if codes else ""), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", response.text[:200]


def _service_account_info() -> dict:
    """The service account JSON from FCM_SERVICE_ACCOUNT_JSON (the text) or FCM_SERVICE_ACCOUNT_FILE."""
    if settings.FCM_SERVICE_ACCOUNT_JSON:
        return json.loads(settings.FCM_SERVICE_ACCOUNT_JSON)
    with open(settings.FCM_SERVICE_ACCOUNT_FILE, encoding="utf-8") as file:
        return json.load(file)
