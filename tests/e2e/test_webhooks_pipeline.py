"""A 10,000-message bulk with a webhook on `message.sent`, sent by a real worker through
PostgreSQL and Redis, its events sequenced and posted by this process (playing beat and the
`webhooks` queue's workers, four at once): every event reaches a healthy receiver exactly once
(by webhook-id), signed so an independent verifier accepts it."""

import json
import threading
from collections import Counter

from django.db import connections

from authms.models import User
from communication.models import WebhookDelivery
from communication.services.events import events_sequence
from communication.services.webhooks import deliveries_send, endpoint_create
from tests.e2e.conftest import statuses, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver


def test_every_sent_event_of_a_10000_bulk_reaches_the_receiver_once(sender, worker, settings):
    settings.WEBHOOK_ALLOW_HTTP, settings.WEBHOOK_ALLOWED_NETWORKS = True, ["127.0.0.0/8"]
    receiver = WebhookReceiver().start()
    try:
        owner = User.objects.get(username="e2e-sender")
        _endpoint, secret = endpoint_create(
            actor=owner, url=f"{receiver.url}/in", event_types=["message.sent"]
        )
        receiver.secrets.append(secret)
        recipients = [f"+86135{index:08d}" for index in range(10_000)]
        response = sender.post("/api/v1/communication/bulk", {"channel": "sms", "content": "Hi", "recipients": recipients},
                               format="json", HTTP_PREFER="return=minimal")  # fmt: skip
        batch_id = response.json()["batch_id"]
        wait_until(lambda: set(statuses(batch_id)) == {"sent"}, timeout=120)

        while events_sequence():  # what beat does every 2 s
            pass

        def webhooks_worker():  # four `-Q webhooks` workers at once: SKIP LOCKED splits the work
            try:
                while deliveries_send():
                    pass
            finally:
                connections.close_all()

        senders = [threading.Thread(target=webhooks_worker) for _ in range(4)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(timeout=180)
        assert WebhookDelivery.objects.filter(state="delivered").count() == 10_000
        ids = Counter(receiver.ids())
        assert len(ids) == 10_000 and max(ids.values()) == 1  # exactly once each
        assert all(request.verified_by == [0] for request in receiver.received)
        bodies = [json.loads(request.body) for request in receiver.received]
        assert {body["type"] for body in bodies} == {"message.sent"}
        assert {body["data"]["batch_id"] for body in bodies} == {batch_id}
    finally:
        receiver.stop()
