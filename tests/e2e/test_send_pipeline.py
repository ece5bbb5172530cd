"""End to end: API → PostgreSQL → Redis broker → a real Celery worker → provider.

The worker runs in this process (celery.contrib.testing) against the Redis broker that
`make test` starts, so the logs must be committed for it to see them (transactional_db).
Email goes to a real SMTP server (aiosmtpd) on a free local port.
"""

import socket
from email import message_from_bytes, policy
from urllib.parse import urlparse

import pytest
from aiosmtpd.controller import Controller
from celery.contrib.testing.worker import start_worker
from django.db import connections
from rest_framework.test import APIClient

from communication.models import Batch, CommunicationLog, Suppression
from communication.tasks import sweep_pending
from notifications.models import Notification
from tests.conftest import celery_config
from tests.e2e.conftest import statuses, wait_until

BULK_URL = "/api/v1/communication/bulk"


def test_bulk_sms_is_sent_by_the_worker(sender, worker):
    recipients = [f"+86138{index:08d}" for index in range(50)]
    response = sender.post(
        BULK_URL, {"channel": "sms", "content": "Hello", "recipients": recipients}, format="json"
    )
    assert response.status_code == 200
    batch_id = response.json()["batch_id"]
    wait_until(lambda: set(statuses(batch_id)) == {"sent"})
    logs = CommunicationLog.objects.filter(batch_id=batch_id)
    assert logs.count() == 50 and all(log.provider_message_id and log.sent_at for log in logs)
    wait_until(lambda: Batch.objects.get(id=batch_id).completed_at is not None)

    # The sender is told once, with the counts, and a link to the batch's logs.
    (notice,) = Notification.objects.filter(event_type="communication.bulk.completed")
    assert notice.user == Batch.objects.get(id=batch_id).sender and notice.type == "communication"
    assert notice.metadata == {
        "batch_id": batch_id,
        "channel": "sms",
        "total": 50,
        "pending": 0,
        "sent": 50,
        "failed": 0,
        "delivered": 0,
    }
    assert notice.action_url == f"/api/v1/communication/logs?batch_id={batch_id}"


class SmtpSink:
    """Collects messages; refuses RCPT for addresses in `refuse`."""

    def __init__(self):
        self.messages = []
        self.refuse = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp_sink(settings):
    sink = SmtpSink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "email": "smtp"}
    yield sink
    controller.stop()


def test_email_arrives_with_one_click_unsubscribe_that_works(sender, worker, smtp_sink):
    smtp_sink.refuse.add("ghost@example.com")
    body = {
        "channel": "email",
        "subject": "Hello {{name}}",
        "content": "Dear {{name}}, news.",
        "variables": {"name": "Ann"},
        "recipients": ["ann@example.com", "ghost@example.com"],
    }
    batch_id = sender.post(BULK_URL, body, format="json").json()["batch_id"]
    wait_until(lambda: "pending" not in statuses(batch_id))

    ann = CommunicationLog.objects.get(batch_id=batch_id, recipient="ann@example.com")
    ghost = CommunicationLog.objects.get(batch_id=batch_id, recipient="ghost@example.com")
    assert ann.status == "sent" and ghost.status == "failed"
    assert "550" in ghost.error and "refused" in ghost.error

    (message,) = smtp_sink.messages
    assert message["To"] == "ann@example.com" and message["Subject"] == "Hello Ann"
    assert message.get_content().strip() == "Dear Ann, news."
    assert str(message["Message-ID"]).strip() == ann.provider_message_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(message["List-Unsubscribe"]).strip().strip("<>")

    # What a mail client does for a one-click unsubscribe (RFC 8058).
    response = APIClient().post(
        urlparse(link).path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    # The email's category (general: free text) is switched off for the address, no one else's.
    assert response.status_code == 200
    assert response.json()["data"] == {"unsubscribed": True, "category": "general"}
    assert Suppression.objects.filter(
        recipient="ann@example.com", channel="email", reason="unsubscribed", category="general"
    ).exists()

    again = sender.post(BULK_URL, {**body, "recipients": ["Ann@Example.com"]}, format="json").json()
    assert again["items"][0]["status"] == "failed" and "suppression list" in again["items"][0]["error"]


def test_logs_left_pending_by_a_broker_outage_are_sent_after_the_sweep(sender, real_broker):
    with celery_config(broker_url="redis://127.0.0.1:1/0"):
        response = sender.post(
            BULK_URL, {"channel": "sms", "content": "Hi", "recipients": ["13800138000"]}, format="json"
        )
    assert response.status_code == 200
    batch_id = response.json()["batch_id"]
    assert statuses(batch_id) == ["pending"]

    CommunicationLog.objects.filter(batch_id=batch_id).update(created_at="2000-01-01T00:00:00Z")
    with start_worker(
        real_broker, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    ):
        sweep_pending.delay()  # what beat does every minute
        wait_until(lambda: statuses(batch_id) == ["sent"])
    connections.close_all()


def test_a_scheduled_bulk_leaves_with_a_real_worker_when_due_and_not_before(sender, worker, settings):
    """2,000 SMS scheduled 6 s ahead: the dispatch task waits with its ETA on the Redis broker,
    nothing leaves early, and all of it is sent within seconds of send_at."""
    from datetime import timedelta

    from django.utils import timezone

    send_at = (timezone.now() + timedelta(seconds=6)).replace(microsecond=0)
    recipients = [f"+86137{index:08d}" for index in range(2000)]
    response = sender.post(
        BULK_URL, {"channel": "sms", "content": "Sale", "recipients": recipients, "send_at": send_at.isoformat()},
        format="json", HTTP_PREFER="return=minimal",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    batch_id = response.json()["batch_id"]
    wait_until(lambda: timezone.now() >= send_at - timedelta(seconds=1), timeout=10)
    assert set(statuses(batch_id)) == {"pending"}  # nothing before its time
    wait_until(lambda: set(statuses(batch_id)) == {"sent"}, timeout=60)
    last = max(CommunicationLog.objects.filter(batch_id=batch_id).values_list("sent_at", flat=True))
    first = min(CommunicationLog.objects.filter(batch_id=batch_id).values_list("sent_at", flat=True))
    assert first >= send_at and (last - send_at).total_seconds() < 60
