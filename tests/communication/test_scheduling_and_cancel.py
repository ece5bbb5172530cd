"""Scheduled bulks (send_at) and cancellation (per batch, per cancellation_key), with the clock
controlled: nothing goes out before its time, everything due goes out through the normal
pipeline, and a cancel stops exactly what no provider has been handed."""

from datetime import UTC, datetime, timedelta

import pytest

from communication.models import Batch, CommunicationLog
from communication.services import dispatch_pending
from tests.communication.conftest import CLOCK_START as NOW

URL = "/api/v1/communication/bulk"


def bulk(client, recipients=("13800138000", "13900139000"), **fields):
    return client.post(URL, {"channel": "sms", "content": "Sale starts now", "recipients": list(recipients), **fields},
                       format="json")  # fmt: skip


def test_a_scheduled_bulk_waits_and_goes_out_when_due(
    client_for, alice, clock, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = bulk(client_for(alice), send_at="2026-12-01T17:30:00+08:00")
    assert response.status_code == 200, response.json()
    items = response.json()["items"]
    assert {(i["status"], i["status_detail"]) for i in items} == {("pending", "scheduled")}
    batch = Batch.objects.get()
    assert batch.send_at == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert set(CommunicationLog.objects.values_list("next_attempt_at", flat=True)) == {batch.send_at}
    clock["now"] = batch.send_at - timedelta(seconds=1)
    dispatch_pending(batch_id=batch.id)
    assert not recording_provider.received  # not a second early
    clock["now"] = batch.send_at
    dispatch_pending(batch_id=batch.id)
    assert len(recording_provider.received) == 2
    assert set(CommunicationLog.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.parametrize(
    ("send_at", "why"),
    [
        ("2026-12-01T07:59:00Z", "past"),
        ("2027-01-05T08:00:01Z", "35 days"),
        ("2026-12-02T09:00:00", "offset"),
        ("tomorrow", "datetime"),
        ("2026-12-02T09:00:00+25:00", "datetime"),
    ],
)
def test_bad_send_at_is_400_and_nothing_is_written(client_for, alice, clock, send_at, why):
    response = bulk(client_for(alice), send_at=send_at)
    assert response.status_code == 400 and "send_at" in response.json()["errors"], response.json()
    assert why.lower() in str(response.json()["errors"]["send_at"]).lower()
    assert not Batch.objects.exists() and not CommunicationLog.objects.exists()


def test_cancelling_a_batch_stops_what_no_provider_has_and_counts_what_left(
    client_for, alice, clock, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch_id = bulk(client_for(alice), recipients=[f"1390013{n:04d}" for n in range(5)],
                        send_at="2026-12-01T09:00:00Z").json()["batch_id"]  # fmt: skip
    logs = list(CommunicationLog.objects.order_by("id"))
    # One already handed over (sent), one claimed by a worker right now: both left, or may have.
    CommunicationLog.objects.filter(id=logs[0].id).update(status="sent", status_detail="")
    CommunicationLog.objects.filter(id=logs[1].id).update(claimed_at=NOW)
    # Refused before any provider saw it (a frequency cap): neither cancelled nor "already left".
    CommunicationLog.objects.filter(id=logs[2].id).update(status="failed", status_detail="frequency_capped")
    response = client_for(alice).post(f"/api/v1/communication/batches/{batch_id}/cancel")
    assert response.status_code == 200 and response.json()["data"] == {"cancelled": 2, "already_left": 2}
    cancelled = CommunicationLog.objects.filter(status_detail="cancelled")
    assert cancelled.count() == 2 and all("Cancelled by alice" in log.error for log in cancelled)
    assert CommunicationLog.objects.get(id=logs[1].id).status == "pending"  # the worker's to settle
    clock["now"] = NOW + timedelta(hours=2)
    dispatch_pending(batch_id=batch_id)
    assert not recording_provider.received  # nothing cancelled went out
    again = client_for(alice).post(f"/api/v1/communication/batches/{batch_id}/cancel").json()["data"]
    assert again == {"cancelled": 0, "already_left": 2}


def test_cancel_by_key_covers_every_batch_with_it_and_only_the_tenants(
    client_for, alice, ada, bob, clock, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            bulk(client_for(alice), send_at="2026-12-01T09:00:00Z", cancellation_key="black-friday")
        bulk(client_for(alice), send_at="2026-12-01T09:00:00Z", cancellation_key="other")
        bulk(client_for(bob), send_at="2026-12-01T09:00:00Z", cancellation_key="black-friday")
    response = client_for(ada).post(
        "/api/v1/communication/cancel", {"cancellation_key": "black-friday"}, format="json"
    )
    assert response.json()["data"] == {"cancelled": 4, "already_left": 0}
    assert CommunicationLog.objects.filter(status="pending").count() == 4  # "other" and Globex's
    assert CommunicationLog.objects.filter(tenant_id=bob.tenant_id, status="pending").count() == 2
    assert Batch.objects.filter(cancellation_key="black-friday", tenant_id=alice.tenant_id,
                                completed_at__isnull=False).count() == 2  # fmt: skip


def test_another_tenants_or_users_batch_cannot_be_cancelled(client_for, alice, bob, tenant_a, clock):
    from tests.factories import UserFactory

    batch_id = bulk(client_for(alice), send_at="2026-12-01T09:00:00Z").json()["batch_id"]
    for outsider in (bob, UserFactory(tenant=tenant_a)):
        assert (
            client_for(outsider).post(f"/api/v1/communication/batches/{batch_id}/cancel").status_code == 404
        )
    response = client_for(bob).post(
        "/api/v1/communication/cancel", {"cancellation_key": "nope"}, format="json"
    )
    assert response.status_code == 404
    assert client_for(bob).post("/api/v1/communication/cancel", {}, format="json").status_code == 400
    assert not CommunicationLog.objects.filter(status_detail="cancelled").exists()


def test_staff_cancel_batches_in_the_console_and_it_is_audited(client, client_for, ada, alice, bob, clock):
    from django.contrib.admin.models import LogEntry

    mine = bulk(client_for(alice), send_at="2026-12-01T09:00:00Z").json()["batch_id"]
    theirs = bulk(client_for(bob), send_at="2026-12-01T09:00:00Z").json()["batch_id"]
    client.force_login(ada)
    page = client.post("/admin/communication/batch/", {"action": "cancel", "_selected_action": [mine, theirs]},
                       follow=True).content.decode()  # fmt: skip
    assert "2 cancelled; 0 had already left." in page  # Globex's batch is not in ada's list
    assert CommunicationLog.objects.filter(batch_id=theirs, status="pending").count() == 2
    assert LogEntry.objects.filter(user=ada, change_message__startswith="Cancelled 2 logs").exists()
