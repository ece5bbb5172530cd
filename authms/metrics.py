"""Prometheus metrics at `/metrics` (text format), for a dashboard and alerts.

Two kinds:
- Provider calls, counted where they happen (the Celery workers): requests, message outcomes
  and latency per provider and channel. Counters live in each process; with
  PROMETHEUS_MULTIPROC_DIR set (a directory shared by the web and worker processes of one
  host, emptied at start) `/metrics` adds up every process of the host. A worker host
  without a web process serves its own with `manage.py serve_metrics`.
- The pipeline's state, read from PostgreSQL and the broker at scrape time, so it is right
  whichever process answers: pending logs by provider and state, unknown outcomes of the last
  24 hours, the Celery queue's depth.

`/metrics` answers only with `Authorization: Bearer <METRICS_TOKEN>` (404 without a token set).
"""

import collections
import logging
import os
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

PROVIDER_REQUESTS = Counter(
    "authms_provider_requests", "Calls to a provider's send API.", ["provider", "channel"]
)
PROVIDER_MESSAGES = Counter(
    "authms_provider_messages",
    "Messages handed to a provider, by outcome (sent, failed, retry, unknown).",
    ["provider", "channel", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "authms_provider_request_seconds",
    "Duration of one call to a provider's send API.",
    ["provider", "channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40),
)


def observe_provider_call(provider: str, channel: str, outcomes: Sequence[str], seconds: float) -> None:
    PROVIDER_REQUESTS.labels(provider, channel).inc()
    PROVIDER_LATENCY.labels(provider, channel).observe(seconds)
    # One label lookup per outcome, not per message (1.7 µs each: 17 ms per 10,000 messages).
    for outcome, count in collections.Counter(outcomes).items():
        PROVIDER_MESSAGES.labels(provider, channel, outcome).inc(count)


class PipelineCollector:
    """Gauges read at scrape time (a few indexed queries over pending rows)."""

    NAMES = (
        "authms_logs_pending",
        "authms_logs_unknown_24h",
        "authms_pushed_reports_waiting",
        "authms_provider_in_rotation",
        "authms_broker_up",
        "authms_queue_depth",
    )

    def describe(self):
        """What registering needs (without it the registry would run `collect`, and its queries, at import)."""
        return [GaugeMetricFamily(name, name) for name in self.NAMES]

    def collect(self):
        from communication.models import CommunicationLog, ProviderHealth, PushedReports, Status, StatusDetail
        from providers.registry import providers_in_use

        now = timezone.now()
        pending = GaugeMetricFamily(
            "authms_logs_pending",
            "Pending logs by provider and state: queued (due), scheduled (waiting for a retry), "
            "in_flight (claimed by a worker), reconciling (outcome being asked of the gateway).",
            labels=["provider", "state"],
        )
        rows = (
            CommunicationLog.objects.filter(status=Status.PENDING)
            .values("provider")
            .annotate(
                reconciling=Count("id", filter=Q(status_detail=StatusDetail.RECONCILING)),
                in_flight=Count(
                    "id", filter=Q(claimed_at__isnull=False) & ~Q(status_detail=StatusDetail.RECONCILING)
                ),
                scheduled=Count("id", filter=Q(claimed_at__isnull=True, next_attempt_at__gt=now)),
                total=Count("id"),
            )
            .order_by()
        )
        for row in rows:
            queued = row["total"] - row["reconciling"] - row["in_flight"] - row["scheduled"]
            for state, value in (
                ("queued", queued),
                ("scheduled", row["scheduled"]),
                ("in_flight", row["in_flight"]),
                ("reconciling", row["reconciling"]),
            ):
                pending.add_metric([row["provider"], state], value)
        yield pending

        unknown = GaugeMetricFamily(
            "authms_logs_unknown_24h",
            "Logs failed as 'outcome unknown' in the last 24 hours, by provider.",
            labels=["provider"],
        )
        for row in (
            CommunicationLog.objects.filter(
                created_at__gte=now - timedelta(hours=24),
                status=Status.FAILED,
                status_detail=StatusDetail.UNKNOWN,
            )
            .values("provider")
            .annotate(n=Count("id"))
            .order_by()
        ):
            unknown.add_metric([row["provider"]], row["n"])
        yield unknown

        waiting = GaugeMetricFamily(
            "authms_pushed_reports_waiting",
            "Pushed receipts stored and not yet applied, by provider: lasting rows mean workers "
            "are behind, or a push that cannot be applied (the sweeper logs it).",
            labels=["provider"],
        )
        for row in PushedReports.objects.values("provider").annotate(n=Count("id")).order_by():
            waiting.add_metric([row["provider"]], row["n"])
        yield waiting

        rotation = GaugeMetricFamily(
            "authms_provider_in_rotation",
            "1 while a provider in use is in rotation, 0 while health switching keeps it out.",
            labels=["provider"],
        )
        out = set(
            ProviderHealth.objects.filter(state=ProviderHealth.State.OUT).values_list("provider", flat=True)
        )
        for name in providers_in_use():
            rotation.add_metric([name], 0 if name in out else 1)
        yield rotation

        depth = queue_depth()
        broker = GaugeMetricFamily("authms_broker_up", "1 when the broker answered the depth query.")
        broker.add_metric([], 0 if depth is None else 1)
        yield broker
        if depth is not None:
            yield GaugeMetricFamily("authms_queue_depth", "Tasks waiting in the Celery queue.", value=depth)


def queue_depth() -> int | None:
    """LLEN of Celery's default queue on a Redis broker, within the broker timeout; None when
    the broker is not Redis or did not answer."""
    import redis

    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    timeout = settings.CELERY_BROKER_CONNECTION_TIMEOUT
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return int(client.llen("celery"))
        finally:
            client.close()
    except redis.RedisError as exc:
        logger.warning("Queue depth unavailable: %s", exc)
        return None


_pipeline = PipelineCollector()
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    REGISTRY.register(_pipeline)


def metrics_view(request):
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token or not constant_time_compare(given, token):
        raise Http404
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_pipeline)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
