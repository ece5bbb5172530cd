"""When every log of a bulk batch has left pending, the sender gets exactly one notice."""

from communication.models import Batch
from notifications.models import Notification

BULK = "/api/v1/communication/bulk"


def _bulk(client, **overrides):
    body = {"channel": "sms", "content": "Hi", "recipients": ["13800138000", "12345"], **overrides}
    return client.post(BULK, body, format="json").json()


def test_sender_is_told_once_with_counts_and_a_link(
    client_for, alice, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch_id = _bulk(client_for(alice))["batch_id"]
    (notice,) = Notification.objects.filter(user=alice)
    assert notice.event_type == "communication.bulk.completed" and notice.priority == "high"
    assert notice.title == "Bulk SMS finished: 1 sent, 1 failed"
    assert notice.metadata == {
        "batch_id": batch_id,
        "channel": "sms",
        "total": 2,
        "pending": 0,
        "sent": 1,
        "failed": 1,
        "delivered": 0,
    }
    assert notice.action_url == f"/api/v1/communication/logs?batch_id={batch_id}"
    from communication.services import batch_complete_if_done

    assert batch_complete_if_done(batch_id=batch_id) is False  # already complete: no second notice
    assert Notification.objects.count() == 1


def test_a_batch_with_only_invalid_recipients_is_complete_at_once(client_for, alice, recording_provider):
    batch_id = _bulk(client_for(alice), recipients=["1", "2"])["batch_id"]
    assert Batch.objects.get(id=batch_id).completed_at is not None
    assert Notification.objects.get(user=alice).metadata["failed"] == 2


def test_admin_sending_on_behalf_is_told_with_a_link_to_the_admin_list(
    client_for, ada, alice, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch_id = _bulk(client_for(ada), user_id=alice.id)["batch_id"]
    notice = Notification.objects.get()
    assert notice.user == ada and notice.action_url == f"/api/v1/admin/communication/logs?batch_id={batch_id}"
