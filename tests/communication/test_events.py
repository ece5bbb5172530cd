"""The events outbox and feed: message events written by the log table's triggers in the
transaction of the change, service events beside them, numbered in commit order and listed
oldest first after an opaque cursor, each tenant (and user) seeing only its own."""

import json
import threading
import time

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from communication.models import CommunicationLog, Event, EventSequence, Status
from communication.services import StatusUpdate, logs_apply_status
from communication.services.events import events_purge, events_sequence
from communication.services.suppression import suppression_add
from tests.factories import LogFactory, UserFactory

URL = "/api/v1/events"


def bulk(client, recipients, **fields):
    return client.post("/api/v1/communication/bulk", {"channel": "sms", "content": "Hi", "recipients": recipients,
                                                      **fields}, format="json")  # fmt: skip


def types_of(events):
    return [event["type"] for event in events]


def test_a_bulk_records_failed_and_sent_events_and_batch_completed(
    client_for, ada, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch_id = bulk(client_for(ada), ["13800138000", "not-a-number"]).json()["batch_id"]
    feed = client_for(ada).get(URL).json()
    assert feed["code"] == 200 and not feed["has_more"]
    assert types_of(feed["items"]) == ["message.failed", "message.sent", "batch.completed"]
    failed, sent, completed = feed["items"]
    assert failed["data"]["error"]["code"] == "invalid" and failed["data"]["status"] == "failed"
    assert sent["data"]["recipient"] == "138****8000"  # masked, as in the API
    assert sent["data"]["batch_id"] == batch_id and sent["data"]["sent_at"] and sent["id"].startswith("evt_")
    assert "content" not in sent["data"] and "13800138000" not in json.dumps(feed)
    assert completed["data"]["counts"] == {"sent": 1, "delivered": 0, "failed": 1}


def test_delivered_unknown_and_reconciled_come_from_the_status_changes(alice):
    logs = [LogFactory(user=alice, status="pending", provider="submail") for _ in range(3)]
    for log in logs:
        log.provider_message_id = f"m-{log.id}"
    CommunicationLog.objects.filter(id=logs[2].id).update(status_detail="reconciling")
    logs_apply_status([StatusUpdate(logs[0].id, Status.SENT), StatusUpdate(logs[2].id, Status.SENT)])
    logs_apply_status([StatusUpdate(logs[0].id, Status.DELIVERED)])
    logs_apply_status([StatusUpdate(logs[1].id, Status.FAILED, status_detail="unknown", error="lost")])
    logs_apply_status([StatusUpdate(logs[0].id, Status.SENT)])  # backwards: refused, no event
    found = sorted(Event.objects.values_list("log_id", "type"))
    assert found == sorted(
        [(logs[0].id, "message.sent"), (logs[0].id, "message.delivered"), (logs[1].id, "message.unknown"),
         (logs[2].id, "message.sent"), (logs[2].id, "message.reconciled")]
    )  # fmt: skip


def test_message_event_ids_begin_with_their_time_and_differ(alice):
    """Time first, so a statement's thousands of events go to the right edge of the id index."""
    logs = [LogFactory(user=alice, status="pending") for _ in range(3)]
    before = int(time.time() * 1000)
    logs_apply_status([StatusUpdate(log.id, Status.SENT) for log in logs])
    after = int(time.time() * 1000)
    ids = list(Event.objects.values_list("id", flat=True))
    assert len(ids) == len(set(ids)) == 3
    for event_id in ids:
        assert len(event_id) == 36 and event_id.startswith("evt_"), event_id
        assert before - 5 <= int(event_id[4:16], 16) <= after + 5, (event_id, before, after)


def test_a_rolled_back_change_leaves_no_event(alice):
    log = LogFactory(user=alice, status="pending")
    with pytest.raises(RuntimeError), transaction.atomic():
        CommunicationLog.objects.filter(id=log.id).update(status="sent")
        assert Event.objects.filter(log_id=log.id).exists()  # in the change's own transaction
        raise RuntimeError
    assert not Event.objects.exists()


def test_users_see_their_own_events_and_tenants_are_apart(client_for, alice, ada, bob):
    mine = LogFactory(user=alice, status="pending")
    theirs = LogFactory(user=ada, status="pending")  # same tenant, another user
    other = LogFactory(user=bob, status="pending")  # another tenant
    CommunicationLog.objects.filter(id__in=[mine.id, theirs.id, other.id]).update(status="sent")
    assert [e["data"]["id"] for e in client_for(alice).get(URL).json()["items"]] == [mine.id]
    assert sorted(e["data"]["id"] for e in client_for(ada).get(URL).json()["items"]) == sorted(
        [mine.id, theirs.id]
    )
    assert [e["data"]["id"] for e in client_for(bob).get(URL).json()["items"]] == [other.id]
    other_event = Event.objects.get(log_id=other.id).id
    assert client_for(ada).get(f"{URL}/{other_event}").status_code == 404
    assert client_for(ada).get(f"{URL}?tenant_id={bob.tenant_id}").status_code == 404


def test_cursor_pages_and_type_filter(client_for, ada):
    logs = [LogFactory(user=ada, status="pending") for _ in range(5)]
    CommunicationLog.objects.filter(id__in=[log.id for log in logs[:3]]).update(status="sent")
    CommunicationLog.objects.filter(id__in=[log.id for log in logs[3:]]).update(status="failed", error="x")
    client = client_for(ada)
    first = client.get(f"{URL}?limit=2").json()
    assert len(first["items"]) == 2 and first["has_more"]
    rest = client.get(f"{URL}?after={first['next_cursor']}").json()
    assert len(rest["items"]) == 3 and not rest["has_more"]
    assert {e["id"] for e in first["items"]}.isdisjoint({e["id"] for e in rest["items"]})
    empty = client.get(f"{URL}?after={rest['next_cursor']}").json()
    assert empty["items"] == [] and empty["next_cursor"] == rest["next_cursor"]
    failed = client.get(f"{URL}?type=message.failed").json()["items"]
    assert types_of(failed) == ["message.failed"] * 2


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [("after=not-a-cursor", 400, "after"), ("after=ZTE6LTE", 400, "after"), ("type=message.exploded", 400, "type"),
     ("limit=0", 400, "limit"), ("limit=101", 400, "limit"), ("limit=ten", 400, "limit")],
)  # fmt: skip
def test_bad_feed_input_is_400(client_for, ada, query, status, field):
    answer = client_for(ada).get(f"{URL}?{query}")
    assert answer.status_code == status and field in answer.json()["errors"], answer.json()


def test_a_cursor_from_before_the_purge_is_410(client_for, ada, settings):
    old = LogFactory(user=ada, status="pending")
    CommunicationLog.objects.filter(id=old.id).update(status="sent")
    cursor = client_for(ada).get(URL).json()["next_cursor"]
    before = client_for(ada).get(URL).json()["items"]
    assert len(before) == 1
    Event.objects.update(occurred_at="2000-01-01T00:00:00Z")
    assert events_purge() == 1
    start = "ZTE6MA"  # position 0: from before everything
    assert client_for(ada).get(f"{URL}?after={start}").status_code == 410
    assert client_for(ada).get(f"{URL}?after={cursor}").status_code == 200  # at the purge's edge: fine
    assert EventSequence.objects.get().purged_through == 1


def test_suppression_added_is_an_event(client_for, ada):
    suppression_add(tenant_id=ada.tenant_id, channel="sms", recipient="13800138000", reason="unsubscribed")
    suppression_add(
        tenant_id=ada.tenant_id, channel="sms", recipient="13800138000", reason="unsubscribed"
    )  # again
    (event,) = client_for(ada).get(URL).json()["items"]
    assert event["type"] == "suppression.added"
    assert event["data"] == {
        "channel": "sms",
        "recipient": "138****8000",
        "reason": "unsubscribed",
        "category": None,
    }


def test_the_feed_needs_a_login():
    assert APIClient().get(URL).status_code == 401


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_late_is_not_skipped_by_a_reader(alice):
    """The commit-order trap: A inserts first and commits last. A reader that saw B must still
    get A next, because positions follow commits, not inserts."""
    early, late = LogFactory(user=alice, status="pending"), LogFactory(user=alice, status="pending")
    a_inserted, b_committed = threading.Event(), threading.Event()

    def transaction_a():
        with transaction.atomic():
            CommunicationLog.objects.filter(id=early.id).update(status="sent")  # event inserted first
            a_inserted.set()
            b_committed.wait(10)
        connection.close()

    thread = threading.Thread(target=transaction_a)
    thread.start()
    a_inserted.wait(10)
    CommunicationLog.objects.filter(id=late.id).update(status="sent")  # B: inserted later, committed first
    events_sequence()
    seen = list(Event.objects.filter(position__isnull=False).values_list("log_id", "position"))
    assert seen == [(late.id, 1)]  # A is invisible, so it has no position yet
    b_committed.set()
    thread.join()
    events_sequence()
    assert Event.objects.get(log_id=early.id).position == 2  # after the cursor a reader holds
    assert Event.objects.get(log_id=early.id).seq < Event.objects.get(log_id=late.id).seq


def test_email_events_mask_the_address(client_for, ada, recording_provider,
                                                            django_capture_on_commit_callbacks):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        bulk(client_for(ada), ["a@example.com"], channel="email", subject="Hi")
    items = client_for(ada).get(URL).json()["items"]
    assert types_of(items) == ["message.sent", "batch.completed"]
    assert items[0]["data"]["recipient"] == "a***@example.com"


def test_the_purge_command_drops_old_events_only(alice):
    from io import StringIO

    from django.core.management import call_command

    old, new = LogFactory(user=alice, status="pending"), LogFactory(user=alice, status="pending")
    CommunicationLog.objects.filter(id=old.id).update(status="sent")
    Event.objects.update(occurred_at="2026-01-01T00:00:00Z")
    CommunicationLog.objects.filter(id=new.id).update(status="sent")
    events_sequence()
    out = StringIO()
    call_command("purge_events", stdout=out)
    assert "Purged 1 events" in out.getvalue()
    assert list(Event.objects.values_list("log_id", flat=True)) == [new.id]
    with pytest.raises(Exception, match="duration"):
        call_command("purge_events", "--older-than", "soon")


def test_provider_switches_are_platform_events(client_for, ada, root):
    from communication.services.health import _switch

    assert _switch("submail", "out", "5 of 5 calls failed")
    assert client_for(ada).get(f"{URL}?type=provider.switched").json()["items"] == []
    (event,) = client_for(root).get(f"{URL}?type=provider.switched").json()["items"]
    assert event["tenant_id"] is None and event["data"] == {"provider": "submail", "state": "out",
                                                            "reason": "5 of 5 calls failed"}  # fmt: skip


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_a_reader_paging_during_concurrent_writes_sees_every_event_once_in_order(alice):
    """Four writers commit status changes in small transactions while a reader pages through
    the feed: the reader ends with every event exactly once, in ascending position."""
    from communication.events_feed import feed_page

    logs = [LogFactory(user=alice, status="pending") for _ in range(200)]
    admin = UserFactory(username="reader", tenant=alice.tenant, is_staff=True)

    def writer(part):
        for log in part:
            with transaction.atomic():
                CommunicationLog.objects.filter(id=log.id).update(status="sent")
        connection.close()

    writers = [threading.Thread(target=writer, args=(logs[i::4],)) for i in range(4)]
    for thread in writers:
        thread.start()
    seen, cursor = [], None
    while True:
        events_sequence()
        page = feed_page(actor=admin, after=cursor, types=[], limit=17, tenant_id=None)
        seen += [item["data"]["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not any(thread.is_alive() for thread in writers) and not page["has_more"]:
            events_sequence()
            last = feed_page(actor=admin, after=cursor, types=[], limit=100, tenant_id=None)
            seen += [item["data"]["id"] for item in last["items"]]
            if not last["items"]:
                break
            cursor = last["next_cursor"]
    assert sorted(seen) == sorted(log.id for log in logs) and len(seen) == len(set(seen))
