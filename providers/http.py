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


# Never a public service's address, whatever Python's flags say (on 3.11 `is_global` is True for
# 192.0.0.192, multicast, NAT64 and 6to4 forms of 169.254.169.254; CGNAT 100.64/10, where
# Alibaba Cloud's metadata lives, is not `is_private`): Svix's list, plus Teredo.
DENIED_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "3fff::/20", "5f00::/16",
        "100::/64", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32",
    )
)  # fmt: skip


def is_internal_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Private, loopback, link-local, reserved, multicast or a tunnel form of one: never a
    public service's address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        not address.is_global
        or address.is_multicast
        or any(address.version == network.version and address in network for network in DENIED_NETWORKS)
    )
