"""Posting to a tenant's URL without becoming a way into our network (SSRF).

A URL is checked when it is saved and again at every delivery: the host's every address must
be public (providers.http.is_internal_address, unless in WEBHOOK_ALLOWED_NETWORKS), and the
request goes to the address that was checked (the name only in `Host` and TLS SNI), so DNS
cannot answer differently between the check and the connection (rebinding). No redirects, no
cookies, short timeouts, at most 64 KB of the answer read.
"""

import ipaddress
import socket
import time
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from providers.http import is_internal_address

RESPONSE_READ_BYTES = 64 * 1024
RESPONSE_KEPT_BYTES = 2048
USER_AGENT = "AuthMS-Webhooks/1.0"
INTERNAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".lan", ".home.arpa")


class UnsafeTarget(Exception):
    """The URL may not be called; the message says why."""


def resolve(host: str, port: int) -> list[str]:
    """Every address of `host` (tests replace this: CI has no DNS)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise UnsafeTarget(
            _("The host %(host)s does not resolve (%(error)s).") % {"host": host, "error": exc}
        ) from None
    return list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))


def _allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if any(ip in ipaddress.ip_network(network) for network in settings.WEBHOOK_ALLOWED_NETWORKS):
        return True
    return not is_internal_address(ip)


@dataclass(frozen=True)
class Target:
    url: str  # with the checked address in place of the name
    host: str  # for Host and SNI
    scheme: str


def checked_target(url: str) -> Target:
    """The URL to connect to, or UnsafeTarget."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise UnsafeTarget(_("Not a valid URL.")) from None
    schemes = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeTarget(_("The URL must use https."))
    if not host or parts.username or parts.password:
        raise UnsafeTarget(_("The URL needs a host and no user name or password."))
    host = host.lower().rstrip(".")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is None and (host == "localhost" or host.endswith(INTERNAL_NAMES)):
        if not settings.WEBHOOK_ALLOWED_NETWORKS:
            raise UnsafeTarget(_("The URL points inside a private network."))
    addresses = [str(literal)] if literal is not None else resolve(host, port)
    if not addresses or not all(_allowed(address) for address in addresses):
        raise UnsafeTarget(
            _("The URL points inside a private network (%(addresses)s).")
            % {"addresses": ", ".join(addresses)}
        )
    address = addresses[0]
    netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return Target(
        url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host=host,
        scheme=parts.scheme,
    )


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    response: str
    error: str
    latency_ms: int
    retry_after: int | None = None
    timed_out: bool = False


def post(client: httpx.Client, url: str, *, headers: dict[str, str], body: bytes) -> PostResult:
    """One POST to a checked address; never raises for the network or the answer."""
    started = time.monotonic()

    def result(**fields) -> PostResult:
        return PostResult(latency_ms=int((time.monotonic() - started) * 1000), **fields)

    try:
        target = checked_target(url)
    except UnsafeTarget as refusal:
        return result(status_code=None, response="", error=str(refusal))
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    request = client.build_request(
        "POST", target.url, content=body, extensions=extensions,
        headers={**headers, "Host": target.host, "Content-Type": "application/json", "User-Agent": USER_AGENT},
    )  # fmt: skip
    try:
        response = client.send(request, stream=True)
        try:
            read = b""
            for chunk in response.iter_bytes():
                read += chunk
                if len(read) >= RESPONSE_READ_BYTES:
                    break
        finally:
            response.close()
    except httpx.TimeoutException as exc:
        return result(
            status_code=None, response="", error=f"timed out ({type(exc).__name__})", timed_out=True
        )
    except httpx.HTTPError as exc:
        return result(status_code=None, response="", error=f"{type(exc).__name__}: {exc}"[:500])
    retry_after = response.headers.get("Retry-After", "")
    return result(
        status_code=response.status_code,
        response=read[:RESPONSE_KEPT_BYTES].decode(errors="replace"),
        error="",
        retry_after=int(retry_after) if retry_after.isdigit() else None,
    )


def new_client() -> httpx.Client:
    return httpx.Client(
        follow_redirects=False,
        timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT, connect=settings.WEBHOOK_CONNECT_TIMEOUT),
        limits=httpx.Limits(max_connections=settings.WEBHOOK_CONCURRENCY),
        trust_env=False,  # no proxies or netrc credentials from the environment
        cookies=CookieJar(
            policy=DefaultCookiePolicy(allowed_domains=[])
        ),  # a receiver's cookies are never kept
    )
