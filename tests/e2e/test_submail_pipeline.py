"""End to end with SUBMAIL: API → worker → fake SUBMAIL → delivery reports back into the logs.

Real PostgreSQL, Redis broker, in-process Celery worker, the fake SUBMAIL HTTP server, and
for SUBHOOK a live HTTP server of this service that the fake server pushes to.
"""

from collections import Counter

from communication.models import CommunicationLog
from communication.status_sync import status_sync_tick
from communication.tasks import sync_delivery_status
from tests.communication.test_status_sync import next_minute
from tests.e2e.conftest import statuses, wait_until

BULK_URL = "/api/v1/communication/bulk"


def bulk_sms(sender, count: int) -> str:
    recipients = [f"+86137{index:08d}" for index in range(count)]
    response = sender.post(
        BULK_URL,
        {"channel": "sms", "content": "Your parcel is on its way.", "recipients": recipients},
        format="json",
    )
    assert response.status_code == 200, response.content[:300]
    return response.json()["batch_id"]


def send_ids(batch_id: str) -> list[str]:
    return list(
        CommunicationLog.objects.filter(batch_id=batch_id)
        .order_by("id")
        .values_list("provider_message_id", flat=True)
    )


def test_500_sms_sent_then_delivery_reports_polled_by_one_sync_tick(sender, fake_submail, worker):
    batch_id = bulk_sms(sender, 500)
    wait_until(lambda: Counter(statuses(batch_id)) == {"sent": 500}, timeout=60)
    ids = send_ids(batch_id)
    assert len(set(ids)) == 500 and set(ids) <= set(fake_submail.messages)
    assert fake_submail.calls("sms/multisend") == 10  # chunks of 50 (SUBMAIL_CHUNK_SIZE)
    assert {content for _, content in fake_submail.deliveries()} == {"【Acme】Your parcel is on its way."}

    fake_submail.report(ids[:490], "delivered")
    fake_submail.report(ids[490:], "dropped", reason="空号/停机")
    sync_delivery_status.delay()  # what beat does every minute
    wait_until(lambda: Counter(statuses(batch_id)) == {"delivered": 490, "failed": 10}, timeout=60)
    assert fake_submail.calls("sms/log") == 1
    dropped = CommunicationLog.objects.filter(batch_id=batch_id, status="failed")
    assert set(dropped.values_list("provider_message_id", flat=True)) == set(ids[490:])
    assert all("空号/停机" in log.error for log in dropped)


def test_delivery_reports_pushed_by_subhook(sender, fake_submail, worker, live_server):
    fake_submail.subhook_url = f"{live_server.url}/api/v1/providers/submail/subhook"
    batch_id = bulk_sms(sender, 50)
    wait_until(lambda: Counter(statuses(batch_id)) == {"sent": 50}, timeout=60)
    ids = send_ids(batch_id)
    fake_submail.report(ids[:45], "delivered", push=True)
    fake_submail.report(ids[45:], "dropped", push=True)
    assert Counter(statuses(batch_id)) == {"delivered": 45, "failed": 5}
    assert fake_submail.calls("sms/log") == 0


def test_faults_end_reconciled_with_nobody_getting_a_message_twice(sender, fake_submail, worker, settings):
    """HTTP 500s and answers slower than the read timeout, both after SUBMAIL stored the
    message: every such message is held as `reconciling`, then the status sync finds it in
    SUBMAIL's records and settles it as sent. Nothing is left unknown, nothing sent twice."""
    settings.SUBMAIL_CHUNK_SIZE = 10
    settings.SUBMAIL_READ_TIMEOUT = 0.3
    from providers.registry import reset_cache

    reset_cache()
    fake_submail.faults.http_500 = 0.10
    fake_submail.faults.slow = 0.10
    fake_submail.faults.slow_seconds = 0.6
    batch_id = bulk_sms(sender, 500)
    logs = CommunicationLog.objects.filter(batch_id=batch_id)
    wait_until(
        lambda: not logs.filter(status="pending").exclude(status_detail="reconciling").exists(), timeout=120
    )
    held = logs.filter(status_detail="reconciling").count()
    assert held > 0 and not logs.filter(status="failed").exists()

    fake_submail.faults.http_500 = fake_submail.faults.slow = 0.0
    for _ in range(5):
        next_minute(fake_submail)
        status_sync_tick(provider_name="submail")
        if not logs.filter(status="pending").exists():
            break
    assert Counter(statuses(batch_id)) == {"sent": 500}
    received = Counter(to for to, _ in fake_submail.deliveries())
    assert len(received) == 500 and max(received.values()) == 1, "a recipient got the message twice"
    sent_ids = set(logs.values_list("provider_message_id", flat=True))
    assert len(sent_ids) == 500 and sent_ids == set(fake_submail.messages)
