"""Rate limits that count atomically and keep working when their store is down.

DRF's cache throttles read a history, decide, then write it back, so concurrent requests
all pass: 100 simultaneous bulk POSTs under a 60/min limit got ~70 accepted. Here every
hit is one atomic increment of a fixed-window counter (`cache.add` then `cache.incr`:
SET NX with a TTL, then INCR on Redis), so exactly the limit passes. When the shared
cache fails, counting falls back to this process's memory for a few seconds: limits stay
in force per process instead of failing the request or switching off, and a hung Redis
costs one timeout, not one per call.
"""

import hashlib
import logging
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_fallback = LocMemCache("authms-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
# After a failure the shared cache is skipped for a few seconds: a hung Redis then costs one
# timeout per process, not one per call (a bulk request makes several).
CACHE_RETRY_AFTER_SECONDS = 5.0
_cache_down_until = 0.0


def _shared_cache():
    """The shared cache, or None while it is considered down."""
    return cache if time.monotonic() >= _cache_down_until else None


def _cache_failed(exc: Exception, what: str) -> None:
    global _cache_down_until
    _cache_down_until = time.monotonic() + CACHE_RETRY_AFTER_SECONDS
    logger.warning(
        "Shared cache unavailable for %s (%s); using process memory for %.0f s.",
        what,
        exc,
        CACHE_RETRY_AFTER_SECONDS,
    )


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """`60/min`, `10/15m`, `5/s`, `1000/day`."""
        match = _RATE.match(text)
        if not match:
            raise ImproperlyConfigured(f"Rate {text!r}: expected N/period such as 60/min, 10/15m or 5/s.")
        count, multiple, unit = match.groups()
        return cls(int(count), int(multiple or 1) * _UNIT_SECONDS[unit[0]])


def _key(scope: str, ident: str, window: int) -> str:
    digest = hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()[:32]
    return f"rate:{scope}:{digest}:{window}"


def _add_and_incr(store, key: str, ttl: int) -> int:
    store.add(key, 0, timeout=ttl)
    try:
        return store.incr(key)
    except ValueError:  # expired between add and incr: start the window again
        store.add(key, 0, timeout=ttl)
        return store.incr(key)


def _increment(key: str, ttl: int) -> int:
    if (shared := _shared_cache()) is not None:
        try:
            return _add_and_incr(shared, key, ttl)
        except Exception as exc:  # noqa: BLE001 - any cache failure: count in process memory instead
            _cache_failed(exc, "rate limits")
    return _add_and_incr(_fallback, key, ttl)


def hit(scope: str, ident: str, rate: Rate) -> float | None:
    """Count one request; the seconds to wait when it is over the limit, else None."""
    now = time.time()
    window = int(now // rate.seconds)
    count = _increment(_key(scope, ident, window), rate.seconds + 1)
    if count > rate.count:
        return max(1.0, (window + 1) * rate.seconds - now)
    return None


def forget(scope: str, ident: str, rate: Rate) -> None:
    """Clear the current window's count (a successful login forgives earlier typos)."""
    key = _key(scope, ident, int(time.time() // rate.seconds))
    _fallback.delete(key)
    if (shared := _shared_cache()) is not None:
        try:
            shared.delete(key)
        except Exception as exc:  # noqa: BLE001 - nothing to forgive in a store that is down
            _cache_failed(exc, "rate limits")


def client_ip(request) -> str:
    """The caller's address; `X-Forwarded-For` is trusted for `TRUSTED_PROXY_COUNT` hops only."""
    proxies = api_settings.NUM_PROXIES or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


class AtomicRateThrottle(BaseThrottle):
    """A DRF throttle on `hit()`: subclasses name a scope, a rate and whom to count."""

    scope = ""

    def get_rate(self) -> str:
        raise NotImplementedError

    def get_ident(self, request) -> str:
        return client_ip(request)

    def allow_request(self, request, view):
        self._wait = hit(self.scope, self.get_ident(request), Rate.parse(self.get_rate()))
        return self._wait is None

    def wait(self):
        return math.ceil(self._wait) if self._wait else None


class PerUserRateThrottle(AtomicRateThrottle):
    def get_ident(self, request) -> str:
        user = getattr(request, "user", None)
        return f"user:{user.pk}" if user is not None and user.is_authenticated else f"ip:{client_ip(request)}"


# --- Logins ---------------------------------------------------------------------------------


def _username_ident(username: str) -> str:
    return username.strip().lower()[:150]


def login_attempt_wait(*, request, username: str) -> float | None:
    """Count a login attempt by address, then by username, then across the service.

    Checked before the password is, in that order, so a flood from one address spends only
    its own budget; the service-wide rate keeps PBKDF2 (~0.2 s of CPU a login) from starving
    every other request. Returns the seconds to wait when a limit is reached.
    """
    limits = (
        ("login-ip", client_ip(request), settings.LOGIN_THROTTLE_IP_RATE),
        ("login-user", _username_ident(username), settings.LOGIN_THROTTLE_USERNAME_RATE),
        ("login-all", "all", settings.LOGIN_THROTTLE_GLOBAL_RATE),
    )
    for scope, ident, rate in limits:
        if wait := hit(scope, ident, Rate.parse(rate)):
            return wait
    return None


def login_succeeded(*, username: str) -> None:
    forget("login-user", _username_ident(username), Rate.parse(settings.LOGIN_THROTTLE_USERNAME_RATE))


# --- Concurrency ----------------------------------------------------------------------------

_process_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_process_slots_lock = threading.Lock()


def acquire_slot(name: str, *, slots: int, per_process: int, lease_seconds: int):
    """A place among at most `slots` holders across the deployment and `per_process` in this
    process, or None when all are taken. Returns the function that gives it back.

    Deployment slots are cache keys taken with `add` (SET NX) and a lease, so a holder that
    dies frees its slot when the lease ends. When the cache is down only the per-process
    limit applies.
    """
    with _process_slots_lock:
        semaphore = _process_slots.setdefault((name, per_process), threading.BoundedSemaphore(per_process))
    if not semaphore.acquire(blocking=False):
        return None
    token = uuid.uuid4().hex
    if (shared := _shared_cache()) is None:
        return _releaser(semaphore, None, token)
    try:
        for index in range(slots):
            key = f"slot:{name}:{index}"
            if shared.add(key, token, timeout=lease_seconds):
                return _releaser(semaphore, key, token)
    except Exception as exc:  # noqa: BLE001 - the shared store is down: the process limit still holds
        _cache_failed(exc, f"{name} slots")
        return _releaser(semaphore, None, token)
    semaphore.release()
    return None


def _releaser(semaphore: threading.BoundedSemaphore, key: str | None, token: str):
    def release():
        semaphore.release()
        if key is None or (shared := _shared_cache()) is None:
            return  # the lease ends it
        try:
            if shared.get(key) == token:
                shared.delete(key)
        except Exception as exc:  # noqa: BLE001 - the lease ends it anyway
            _cache_failed(exc, "slots")

    return release
