"""Dependency checks behind GET /health. They run side by side, each with its own socket
timeouts, and the report waits HEALTH_TIMEOUT_SECONDS at most: a hung dependency is
reported as down, it never hangs the probe."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.core.cache import cache
from django.db import connection


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # noqa: BLE001 - a probe reports failures, it does not raise them
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result = {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if detail:
        result.update(detail)
    return result


def _database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"vendor": connection.vendor}
    finally:
        connection.close()  # this thread's own connection


def _cache():
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("value written to the cache could not be read back")
    cache.delete(key)


def _broker():
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"mode": "eager"}
    from authms.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(
            max_retries=1,
            interval_start=0,
            interval_step=0,
            timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT,
        )
    return None


_CHECKS = {"database": _database, "cache": _cache, "broker": _broker}
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="health")


def health_report() -> tuple[bool, dict]:
    futures = {name: _pool.submit(_timed, check) for name, check in _CHECKS.items()}
    deadline = time.monotonic() + settings.HEALTH_TIMEOUT_SECONDS
    checks = {}
    for name, future in futures.items():
        try:
            checks[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            checks[name] = {
                "status": "error",
                "error": f"no answer within {settings.HEALTH_TIMEOUT_SECONDS} s",
            }
    healthy = all(check["status"] == "ok" for check in checks.values())
    return healthy, {"status": "ok" if healthy else "degraded", "checks": checks}
