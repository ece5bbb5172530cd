"""Inbox v2: unread and unseen counts from a maintained row (exact under concurrent writers,
compared with COUNT(*)), seen/read/archive states with the status filter, and cursor pages
that stay stable while new items arrive."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from notifications.inbox_counts import recount_inbox
from notifications.models import InboxCount, Notification
from notifications.services import notify
from tests.factories import UserFactory

URL = "/api/v1/notifications"


def send(user, count=1):
    for _ in range(count):
        notify(
            tenant_id=user.tenant_id, user_ids=[user.id], type="system", event_type="test.sent", title="Hello"
        )
    return list(Notification.objects.filter(user=user).order_by("-created_at", "-id"))


def counts(user) -> dict:
    base = Notification.objects.filter(user=user, archived_at__isnull=True)
    return {"unread": base.filter(is_read=False).count(), "unseen": base.filter(seen_at__isnull=True).count()}


def test_seen_read_and_archive_move_the_counts(client_for, alice, bob):
    items = send(alice, 4)
    send(bob, 2)
    client = client_for(alice)
    assert client.get(f"{URL}/unread-count").json()["data"] == {"unread": 4, "unseen": 4}
    seen = client.post(f"{URL}/seen", {"up_to": items[1].id}, format="json").json()["data"]
    assert seen == {"updated": 3, "unread": 4, "unseen": 1}  # the bell showed the older three and items[1]
    client.post(f"{URL}/{items[0].id}/read")
    client.post(f"{URL}/{items[3].id}/archive")
    assert client.get(f"{URL}/unread-count").json()["data"] == {"unread": 2, "unseen": 1} == counts(alice)
    client.post(f"{URL}/{items[3].id}/unarchive")
    assert client.get(f"{URL}/unread-count").json()["data"] == {"unread": 3, "unseen": 1} == counts(alice)
    assert client.post(f"{URL}/archive-read").json()["data"] == {"updated": 1}
    assert client.get(f"{URL}/unread-count").json()["data"] == counts(alice)
    assert client_for(bob).get(f"{URL}/unread-count").json()["data"] == {"unread": 2, "unseen": 2}


def test_the_status_filter(client_for, alice):
    items = send(alice, 5)
    Notification.objects.filter(id=items[0].id).update(is_read=True)
    Notification.objects.filter(id=items[1].id).update(archived_at=timezone.now())
    Notification.objects.filter(id=items[2].id).update(seen_at=timezone.now())
    client = client_for(alice)

    def ids(**params):
        return {item["id"] for item in client.get(URL, params).json()["items"]}

    every = {item.id for item in items}
    assert ids() == every - {items[1].id}  # archived left out by default
    assert ids(status="unread") == every - {items[0].id, items[1].id}
    assert ids(status="read") == {items[0].id}
    assert ids(status="unseen") == every - {items[1].id, items[2].id}
    assert ids(status="archived") == {items[1].id}
    assert ids(status="all") == every
    assert ids(unread_only="true") == ids(status="unread")  # the seed's filter keeps working


def test_cursor_pages_are_stable_while_new_items_arrive(client_for, alice):
    send(alice, 7)
    client = client_for(alice)
    first = client.get(URL, {"cursor": "", "page_size": 3}).json()
    assert len(first["items"]) == 3 and first["has_more"] and "total" not in first
    send(alice, 2)  # new ones on top: page numbers would now repeat two items
    second = client.get(URL, {"cursor": first["next_cursor"], "page_size": 3}).json()
    third = client.get(URL, {"cursor": second["next_cursor"], "page_size": 3}).json()
    seen = [item["id"] for page in (first, second, third) for item in page["items"]]
    assert len(seen) == 7 == len(set(seen)) and not third["has_more"] and third["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [({"cursor": "garbage"}, "cursor"), ({"cursor": "WyJ4IiwxXQ"}, "cursor"), ({"cursor": "", "page": "2"}, "cursor"),
     ({"status": "deleted"}, "status")],
)  # fmt: skip
def test_bad_list_input_is_400(client_for, alice, params, field):
    answer = client_for(alice).get(URL, params)
    assert answer.status_code == 400 and field in answer.json()["errors"], answer.json()


def test_archive_of_another_users_item_is_404(client_for, alice, bob):
    (theirs,) = send(bob)
    assert client_for(alice).post(f"{URL}/{theirs.id}/archive").status_code == 404
    assert client_for(alice).post(f"{URL}/seen", {"up_to": theirs.id}, format="json").status_code == 404
    assert client_for(alice).post(f"{URL}/seen", {"up_to": 5}, format="json").status_code == 400
    assert Notification.objects.get(id=theirs.id).archived_at is None


def test_deletes_and_a_recount_keep_the_counts_exact(alice):
    items = send(alice, 3)
    Notification.objects.filter(id=items[0].id).delete()
    assert InboxCount.objects.filter(user=alice).values("unread", "unseen").get() == counts(alice)
    InboxCount.objects.all().delete()
    recount_inbox()
    assert InboxCount.objects.filter(user=alice).values("unread", "unseen").get() == counts(alice)


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_counts_stay_exact_under_concurrent_writers(tenant_a):
    """Six threads insert, read, see, archive and delete in one inbox at once; the counter row
    ends equal to COUNT(*)."""
    user = UserFactory(username="busy", tenant=tenant_a)
    send(user, 60)
    ids = list(Notification.objects.filter(user=user).values_list("id", flat=True))
    barrier, errors = threading.Barrier(6), []

    def work(kind):
        try:
            write(kind)
        except Exception as error:  # a thread's failure must fail the test
            errors.append(error)
        finally:
            connection.close()

    def write(kind):
        barrier.wait()
        for index in range(20):
            with transaction.atomic():
                if kind == "insert":
                    notify(
                        tenant_id=user.tenant_id,
                        user_ids=[user.id],
                        type="system",
                        event_type="test.sent",
                        title="x",
                    )
                elif kind == "read":
                    Notification.objects.filter(id=ids[index]).update(is_read=True, read_at=timezone.now())
                elif kind == "seen":
                    Notification.objects.filter(id__in=ids[index::7]).update(seen_at=timezone.now())
                elif kind == "archive":
                    Notification.objects.filter(id=ids[20 + index]).update(archived_at=timezone.now())
                elif kind == "delete":
                    Notification.objects.filter(id=ids[40 + index]).delete()
                else:
                    Notification.objects.filter(user=user, is_read=False).filter(
                        Q(created_at__lt=timezone.now() - timedelta(days=1))
                    ).update(is_read=True)

    threads = [
        threading.Thread(target=work, args=(kind,))
        for kind in ("insert", "read", "seen", "archive", "delete", "old")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert Notification.objects.filter(user=user).count() == 60 + 20 - 20  # the inserts and deletes happened
    assert InboxCount.objects.filter(user=user).values("unread", "unseen").get() == counts(user)


# --- The reader's language ----------------------------------------------------------------------


def bulk_notice(user):
    notify(tenant_id=user.tenant_id, user_ids=[user.id], type="communication", event_type="communication.bulk.completed",
           title="", template="communication.bulk.completed",
           params={"channel": "SMS", "sent": "2", "failed": "0", "total": "2"})  # fmt: skip
    return Notification.objects.get(user=user)


def test_a_notice_renders_in_the_readers_language(client_for, alice, tenant_a):
    stored = bulk_notice(alice)
    assert stored.title == "Bulk SMS finished: 2 sent, 0 failed"  # kept in LANGUAGE_CODE
    client = client_for(alice)

    def title(**headers):
        return client.get(URL, **headers).json()["items"][0]["title"]

    assert title() == "Bulk SMS finished: 2 sent, 0 failed"
    assert title(HTTP_ACCEPT_LANGUAGE="zh-CN") == "批量 SMS 已完成：成功 2 条，失败 0 条"
    tenant_a.language = "zh-hans"
    tenant_a.save()
    assert title() == "批量 SMS 已完成：成功 2 条，失败 0 条"  # no header: the tenant's
    client.put("/api/v1/preferences", {"language": "en"}, format="json")
    assert title(HTTP_ACCEPT_LANGUAGE="zh-CN") == "Bulk SMS finished: 2 sent, 0 failed"  # the profile wins


def test_plain_notifications_are_shown_as_written(client_for, alice):
    send(alice)
    assert client_for(alice).get(URL, HTTP_ACCEPT_LANGUAGE="zh-CN").json()["items"][0]["title"] == "Hello"


def test_an_unknown_language_is_400(client_for, alice):
    answer = client_for(alice).put("/api/v1/preferences", {"language": "tlh"}, format="json")
    assert answer.status_code == 400 and "language" in answer.json()["errors"]


def test_reads_for_many_streams_at_once_keep_each_reader_to_their_own_inbox(db, alice, ada, bob):
    from authms.models import User
    from notifications.selectors import newest_position, notifications_after_each

    start = newest_position(user=alice)
    one = _notify_one(alice, "one")
    _notify_one(alice, "two")
    _notify_one(ada, "ada's")
    forged = User(id=alice.id, tenant_id=bob.tenant_id)  # alice's id under another tenant
    found = notifications_after_each(
        [(alice, start), (alice, (one.created_at, one.id)), (ada, start), (bob, start), (forged, start)],
        limit=10,
    )
    assert [[row.title for row in rows] for rows in found] == [["one", "two"], ["two"], ["ada's"], [], []]
    assert notifications_after_each([(alice, start)], limit=1)[0] == [one]


def _notify_one(user, title):
    notify(tenant_id=user.tenant_id, user_ids=[user.id], type="system", event_type="a.b", title=title)
    return Notification.objects.filter(user=user).order_by("-created_at", "-id").first()
