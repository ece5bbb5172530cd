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

from dataclasses import dataclass

import requests

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
        except (requests.ConnectTimeout, requests.exceptions.SSLError, requests.exceptions.InvalidURL) as exc:
            raise self._retry(f"could not be reached: {exc}") from exc
        except requests.ConnectionError as exc:
            if auxiliary or never_connected(exc):
                raise self._retry(f"could not be reached: {exc}") from exc
            raise self._unknown(f"connection to {self.name} dropped: {exc}") from exc
        except requests.RequestException as exc:  # read timeouts and the rest: the request was sent
            if auxiliary:
                raise self._retry(f"did not answer an auxiliary call: {type(exc).__name__}") from exc
            raise self._unknown(f"{self.name} did not answer in time") from exc
        if response.status_code in NOT_PROCESSED_STATUSES or (auxiliary and response.status_code >= 500):
            raise self._retry(
                f"answered HTTP {response.status_code} (not processed)", response=response.text[:2048]
            )
        if response.status_code >= 500:
            raise self._unknown(
                f"{self.name} answered HTTP {response.status_code}", response=response.text[:2048]
            )
        return response

    def json(self, response: requests.Response, *, auxiliary: bool = False):
        """The body as JSON; unreadable is unknown (or retryable for an auxiliary call)."""
        try:
            return response.json()
        except ValueError:
            reason = f"unreadable {self.name} answer (HTTP {response.status_code})"
            if auxiliary:
                raise self._retry(reason) from None
            raise self._unknown(reason, response=response.text[:2048]) from None

    def _retry(self, reason: str, response: str | None = None) -> ProviderError:
        return ProviderError(f"{self.name} {reason}", permanent=False, response=response)

    def _unknown(self, reason: str, response: str | None = None) -> ProviderError:
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
