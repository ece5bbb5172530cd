"""Shared benchmark helpers: Django set-up, timing, percentiles, a results table."""

import os
import statistics
import sys
import time

import django


def setup_django(urlconf: str | None = None):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authms.settings")
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.urls import clear_url_caches

    if connection.vendor != "postgresql":
        sys.exit("Benchmarks run on PostgreSQL: use `make bench` (it starts one).")
    if urlconf:
        settings.ROOT_URLCONF = urlconf
        clear_url_caches()


def migrate():
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def time_calls(call, *, repeat: int, warmup: int = 5) -> dict:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p95": samples[min(len(samples) - 1, int(len(samples) * 0.95))],
        "n": len(samples),
    }


def print_table(headers: list[str], rows: list[list]):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
