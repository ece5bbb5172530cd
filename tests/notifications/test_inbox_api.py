"""GET /api/v1/notifications (seed 003) and its companions, through the real URL stack."""

import json
import re

import pytest

from notifications.models import Notification
from notifications.services import notify

URL = "/api/v1/notifications"
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DOCUMENTED_FIELDS = [
    "id", "tenant_id", "user_id", "type", "event_type", "priority", "title", "content",
    "action_url", "metadata", "is_read", "read_at", "created_at",
]  # fmt: skip


def send(user, count=1, **fields):
    defaults = {"type": "security", "event_type": "security.login.new_device", "title": "New sign-in"}
    for _ in range(count):
        notify(tenant_id=user.tenant_id, user_ids=[user.id], **{**defaults, **fields})
    return list(Notification.objects.filter(user=user).order_by("-created_at", "-id"))


def test_inbox_has_the_documented_shape(client_for, alice):
    send(alice, metadata={"ip": "1.2.3.4"}, action_url="/security", priority="high", content="From Shanghai")
    body = client_for(alice).get(URL).json()
    assert body["code"] == 200 and body["total"] == 1 and body["pagination"]["page"] == 1
    (item,) = body["items"]
    assert list(item) == [*DOCUMENTED_FIELDS, "seen_at", "archived_at"]  # the seed's, then extensions
    assert (
        item["id"].startswith("ntf_") and item["user_id"] == alice.id and item["tenant_id"] == alice.tenant_id
    )
    assert item["metadata"] == '{"ip":"1.2.3.4"}' and json.loads(item["metadata"]) == {"ip": "1.2.3.4"}
    assert item["is_read"] is False and item["read_at"] is None and RFC3339_Z.match(item["created_at"])
    assert (item["priority"], item["action_url"], item["content"]) == ("high", "/security", "From Shanghai")


def test_empty_metadata_is_an_empty_object_string_and_no_action_url_is_null(client_for, alice):
    send(alice)
    (item,) = client_for(alice).get(URL).json()["items"]
    assert item["metadata"] == "{}" and item["action_url"] is None


def test_newest_first_and_only_my_own(client_for, alice, ada, bob):
    mine = send(alice, 3)
    send(ada)
    send(bob)
    items = client_for(alice).get(URL).json()["items"]
    assert [item["id"] for item in items] == [n.id for n in mine]


@pytest.mark.parametrize("value,expected", [("true", 1), ("TRUE", 1), ("1", 1), ("false", 2), ("0", 2)])
def test_unread_only_accepts_strict_booleans(client_for, alice, value, expected):
    first, _ = send(alice, 2)
    Notification.objects.filter(id=first.id).update(is_read=True)
    assert client_for(alice).get(URL, {"unread_only": value}).json()["total"] == expected


@pytest.mark.parametrize("value", ["maybe", "yes", "", "2"])
def test_unread_only_rejects_anything_else(client_for, alice, value):
    response = client_for(alice).get(URL, {"unread_only": value})
    assert response.status_code == 400 and "unread_only" in response.json()["errors"]


def test_filters_by_type_and_priority(client_for, alice):
    send(alice, type="system", event_type="status.incident.created", priority="urgent")
    send(alice)
    client = client_for(alice)
    assert client.get(URL, {"type": "system"}).json()["total"] == 1
    assert client.get(URL, {"priority": "urgent"}).json()["total"] == 1
    for param in ("type", "priority"):
        response = client.get(URL, {param: "nope"})
        assert response.status_code == 400 and "allowed values" in response.json()["message"]


@pytest.mark.parametrize("params", [{"page": "0"}, {"page_size": "-1"}, {"page": "x"}])
def test_bad_pages_are_400(client_for, alice, params):
    assert client_for(alice).get(URL, params).status_code == 400


def test_page_size_is_clamped_and_past_the_end_is_empty(client_for, alice):
    send(alice, 2)
    client = client_for(alice)
    assert client.get(URL, {"page_size": 500}).json()["pagination"]["page_size"] == 100
    assert client.get(URL, {"page": 9}).json()["items"] == []


def test_unread_count(client_for, alice, bob):
    first, _, _ = send(alice, 3)
    send(bob, 5)
    Notification.objects.filter(id=first.id).update(is_read=True)
    assert client_for(alice).get(f"{URL}/unread-count").json()["data"] == {"unread": 2, "unseen": 3}


def test_mark_read_is_idempotent_and_sets_read_at_once(client_for, alice):
    (notification,) = send(alice)
    client = client_for(alice)
    first = client.post(f"{URL}/{notification.id}/read").json()["data"]
    second = client.post(f"{URL}/{notification.id}/read").json()["data"]
    assert (
        first["is_read"] is True
        and RFC3339_Z.match(first["read_at"])
        and second["read_at"] == first["read_at"]
    )


def test_read_all_is_one_update_returning_how_many_changed(client_for, alice, bob, django_assert_num_queries):
    send(alice, 3)
    send(bob)
    client = client_for(alice)
    with django_assert_num_queries(2):  # auth + one UPDATE
        assert client.post(f"{URL}/read-all").json()["data"] == {"updated": 3}
    assert client.post(f"{URL}/read-all").json()["data"] == {"updated": 0}
    assert Notification.objects.filter(user=bob, is_read=False).count() == 1


def test_delete_my_notification(client_for, alice):
    (notification,) = send(alice)
    response = client_for(alice).delete(f"{URL}/{notification.id}")
    assert response.status_code == 200 and not Notification.objects.exists()


@pytest.mark.parametrize("method,suffix", [("get", ""), ("delete", ""), ("post", "/read")])
def test_another_users_unknown_or_malformed_id_is_404(client_for, alice, bob, method, suffix):
    (theirs,) = send(bob)
    client = client_for(alice)
    for notification_id in (theirs.id, "ntf_01ZZZZZZZZZZZZZZZZZZZZZZZZ", "not-an-id", "%20"):
        response = getattr(client, method)(f"{URL}/{notification_id}{suffix}")
        assert response.status_code == 404 and response.json()["code"] == 404
    assert Notification.objects.get(id=theirs.id).is_read is False


def test_no_token_is_401(db):
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401


@pytest.mark.parametrize("page_size", [1, 100])
def test_list_query_count_is_fixed(client_for, alice, page_size, django_assert_num_queries):
    notify(tenant_id=alice.tenant_id, user_ids=[alice.id], type="system", event_type="a.b", title="t")
    for _ in range(110):
        notify(tenant_id=alice.tenant_id, user_ids=[alice.id], type="system", event_type="a.b", title="t")
    client = client_for(alice)
    with django_assert_num_queries(3):  # auth, COUNT, page
        assert len(client.get(URL, {"page_size": page_size}).json()["items"]) == page_size
    with django_assert_num_queries(1):  # the user, tenant and counts in one
        assert client.get(f"{URL}/unread-count").json()["data"] == {"unread": 111, "unseen": 111}


def test_a_short_first_page_is_the_whole_result_and_is_not_counted(
    client_for, alice, django_assert_num_queries
):
    for _ in range(3):
        notify(tenant_id=alice.tenant_id, user_ids=[alice.id], type="system", event_type="a.b", title="t")
    client = client_for(alice)
    with django_assert_num_queries(2):  # auth, page (3 < 20: the total is its length)
        body = client.get(URL).json()
    assert body["total"] == 3 and len(body["items"]) == 3
    with django_assert_num_queries(3):  # a full page counts
        assert client.get(URL, {"page_size": 3}).json()["total"] == 3
    with django_assert_num_queries(2):  # a later page counts first; past the end: no slice
        body = client.get(URL, {"page": 2, "page_size": 3}).json()
    assert body["total"] == 3 and body["items"] == []
