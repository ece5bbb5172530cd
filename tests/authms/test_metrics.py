"""/metrics: Prometheus text, token-protected, provider counters and pipeline gauges."""

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from communication.models import CommunicationLog
from communication.services import dispatch_pending
from tests.factories import LogFactory

TOKEN = "metrics-test-token"


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def get() -> str:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
        return response.content.decode()

    return get


def _value(text: str, name: str, **labels) -> float | None:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return None


def test_without_the_token_there_is_nothing(db, client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics").status_code == 404


def test_pending_logs_are_counted_by_provider_and_state(scrape, alice):
    now = timezone.now()
    LogFactory.create_batch(3, user=alice, provider="submail")  # queued
    LogFactory(user=alice, provider="submail", next_attempt_at=now + timedelta(minutes=5))  # scheduled
    LogFactory(user=alice, provider="submail", claimed_at=now)  # in flight
    LogFactory(user=alice, provider="submail", claimed_at=now, status_detail="reconciling")
    LogFactory(user=alice, provider="aliyun", status="sent")  # not pending: not counted
    LogFactory(user=alice, provider="aliyun", status="failed", status_detail="unknown")
    text = scrape()
    assert [_value(text, "authms_logs_pending", provider="submail", state=state)
            for state in ("queued", "scheduled", "in_flight", "reconciling")] == [3, 1, 1, 1]  # fmt: skip
    assert _value(text, "authms_logs_pending", provider="aliyun", state="queued") is None
    assert _value(text, "authms_logs_unknown_24h", provider="aliyun") == 1


def test_pushed_receipts_waiting_to_be_applied_are_counted(db, scrape):
    from communication.models import PushedReports

    PushedReports.objects.create(provider="aliyun", reports=[])
    PushedReports.objects.create(provider="aliyun", reports=[])
    assert _value(scrape(), "authms_pushed_reports_waiting", provider="aliyun") == 2


def test_provider_calls_are_counted_with_outcomes_and_latency(scrape, alice, recording_provider):
    from providers.base import SendResult

    before = scrape()
    LogFactory.create_batch(2, user=alice, provider="recording", batch_id="bat_M")
    LogFactory(user=alice, provider="recording", batch_id="bat_M", recipient="+8613900000009")
    recording_provider.behaviour = lambda m: (
        SendResult.failed("no") if m.recipient == "+8613900000009" else SendResult.sent("x")
    )
    dispatch_pending(batch_id="bat_M")
    after = scrape()

    def grew(name, **labels):
        return (_value(after, name, **labels) or 0) - (_value(before, name, **labels) or 0)

    assert grew("authms_provider_requests_total", provider="recording", channel="sms") == 1
    assert grew("authms_provider_messages_total", provider="recording", channel="sms", outcome="sent") == 2
    assert grew("authms_provider_messages_total", provider="recording", channel="sms", outcome="failed") == 1
    assert grew("authms_provider_request_seconds_count", provider="recording", channel="sms") == 1
    assert CommunicationLog.objects.filter(status="sent").count() == 2


def test_queue_depth_comes_from_the_broker_and_its_absence_is_said(db, scrape, settings):
    settings.CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
    text = scrape()
    assert _value(text, "authms_broker_up") == 1 and _value(text, "authms_queue_depth") is not None
    settings.CELERY_BROKER_URL, settings.CELERY_BROKER_CONNECTION_TIMEOUT = "redis://127.0.0.1:1/0", 1
    text = scrape()
    assert _value(text, "authms_broker_up") == 0 and _value(text, "authms_queue_depth") is None


def test_health_state_is_a_gauge_per_provider_in_use(db, scrape, settings):
    from communication.models import ProviderHealth

    settings.CHANNEL_PROVIDERS = {"sms": "submail", "email": "smtp"}
    settings.FAILOVER_PROVIDERS = {"sms": ["aliyun"]}
    ProviderHealth.objects.create(provider="submail", state="out")
    text = scrape()
    assert [
        _value(text, "authms_provider_in_rotation", provider=name) for name in ("submail", "aliyun", "smtp")
    ] == [0, 1, 1]
