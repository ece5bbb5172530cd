"""The one transport rule for HTTP providers: could a failed call have sent anything?

- The request never left (connection refused, DNS, TLS handshake, connect timeout): retry.
- The provider answered with a status that says it did not take the request (429 Too Many
  Requests, 503 Service Unavailable: both mean "not processed, try later"): retry.
- The request left and no usable answer came back (read timeout, a connection dropped after
  sending, any other 5xx, an unreadable body): the outcome is unknown; never resend blindly.
- Anything else is an answer, for the provider's own error map to read.

An auxiliary call (a clock lookup, a token fetch) carries no message, so every failure of
one is retryable: it can never make a message's outcome unknown. Every call has connect
and read timeouts; nothing here retries (that is the dispatcher's decision).
"""

import ipaddress
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests
from django.utils import timezone

from providers.base import OUTCOME_UNKNOWN, ProviderError

NOT_PROCESSED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class HttpTransport:
    name: str  # the provider's display name, for error texts
    connect_timeout: float
    read_timeout: float
    session: requests.Session

    def request(self, method: str, url: str, *, auxiliary: bool = False, **kwargs) -> requests.Response:
        """Send one request; a ProviderError says whether it may be retried."""
        try:
            response = self.session.request(
                method, url, timeout=(self.connect_timeout, self.read_timeout), **kwargs
            )
        except requests.RequestException as exc:
            raise request_failure(self.name, exc, auxiliary=auxiliary) from exc
        if failure := status_failure(self.name, response, auxiliary=auxiliary):
            raise failure
        return response

    def json(self, response: requests.Response, *, auxiliary: bool = False):
        """The body as JSON; unreadable is unknown (or retryable for an auxiliary call)."""
        try:
            return response.json()
        except ValueError:
            reason = f"unreadable {self.name} answer (HTTP {response.status_code})"
            if auxiliary:
                raise _retry(self.name, reason) from None
            raise _unknown(reason, response=response.text[:2048]) from None


def request_failure(name: str, exc: requests.RequestException, *, auxiliary: bool = False) -> ProviderError:
    """A call that got no answer (also for clients that call `requests` themselves, such as
    django-anymail's backends): retryable only when the request surely never left."""
    if isinstance(
        exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.InvalidURL
    ):
        return _retry(name, f"could not be reached: {exc}")
    if isinstance(exc, requests.ConnectionError):
        if auxiliary or never_connected(exc):
            return _retry(name, f"could not be reached: {exc}")
        return _unknown(f"connection to {name} dropped: {exc}")
    if auxiliary:  # read timeouts and the rest: the request was sent
        return _retry(name, f"did not answer an auxiliary call: {type(exc).__name__}")
    return _unknown(f"{name} did not answer in time")


def status_failure(
    name: str, response: requests.Response, *, auxiliary: bool = False
) -> ProviderError | None:
    """The error an answer's HTTP status means under the rule (None: read the answer)."""
    status = response.status_code
    if status in NOT_PROCESSED_STATUSES or (auxiliary and status >= 500):
        return _retry(name, f"answered HTTP {status} (not processed)", response.text[:2048])
    if status >= 500:
        return _unknown(f"{name} answered HTTP {status}", response.text[:2048])
    return None


def _retry(name: str, reason: str, response: str | None = None) -> ProviderError:
    return ProviderError(f"{name} {reason}", permanent=False, response=response)


def _unknown(reason: str, response: str | None = None) -> ProviderError:
    return ProviderError(
        OUTCOME_UNKNOWN.format(reason=reason), permanent=True, outcome_unknown=True, response=response
    )


def never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was never made (refused, DNS), so nothing was sent."""
    text = repr(exc)
    return any(
        marker in text
        for marker in ("NewConnectionError", "NameResolutionError", "Connection refused", "Failed to resolve")
    )


def retry_after_seconds(response) -> int | None:
    """An answer's Retry-After (seconds, or an HTTP date) in seconds; None when absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        return max(0, int((parsedate_to_datetime(value) - timezone.now()).total_seconds()))
    except (TypeError, ValueError):
        return None


def is_internal_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Private, loopback, link-local, reserved or multicast: never a public service's address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast
