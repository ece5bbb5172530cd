"""GET /api/v1/communication/logs (seed 000) through the real URL stack."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import LogFactory

URL = "/api/v1/communication/logs"
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DOCUMENTED_FIELDS = {
    "id", "tenant_id", "user_id", "channel", "provider", "template_id", "recipient", "content",
    "status", "error", "response", "sent_at", "created_at", "updated_at",
}  # fmt: skip


def test_user_sees_own_logs_in_documented_shape(client_for, alice):
    LogFactory(user=alice, recipient="+8613800138000")
    body = client_for(alice).get(URL).json()
    assert body["code"] == 200 and body["message"] == "OK" and RFC3339_Z.match(body["timestamp"])
    assert body["total"] == 1
    assert body["pagination"] == {
        "page": 1, "page_size": 20, "total": 1, "total_pages": 1, "has_next": False, "has_prev": False,
    }  # fmt: skip
    item = body["items"][0]
    assert DOCUMENTED_FIELDS <= set(item)
    assert (
        item["id"].startswith("log_") and item["user_id"] == alice.id and item["tenant_id"] == alice.tenant_id
    )
    assert item["recipient"] == "138****8000"
    assert RFC3339_Z.match(item["created_at"]) and RFC3339_Z.match(item["updated_at"])
    assert item["sent_at"] is None and item["error"] is None and item["response"] is None
    assert item["template_id"] is None and item["subject"] is None


def test_email_recipient_is_masked(client_for, alice):
    LogFactory(user=alice, channel="email", recipient="zhang.san@example.com", provider="smtp")
    assert client_for(alice).get(URL).json()["items"][0]["recipient"] == "z***@example.com"


def test_newest_first_with_id_as_tie_breaker(client_for, alice, make_logs):
    logs = make_logs(3, user=alice)
    same_time = LogFactory(user=alice, created_at=logs[0].created_at)
    ids = [item["id"] for item in client_for(alice).get(URL).json()["items"]]
    newest_pair = sorted([logs[0].id, same_time.id], reverse=True)
    assert ids == [*newest_pair, logs[1].id, logs[2].id]


def test_user_never_sees_other_users_logs(client_for, alice, ada, bob):
    LogFactory(user=ada)
    LogFactory(user=bob)
    assert client_for(alice).get(URL).json()["total"] == 0


@pytest.mark.parametrize("param,value", [("channel", "email"), ("status", "failed")])
def test_filters_by_channel_and_status(client_for, alice, param, value):
    LogFactory(user=alice)
    LogFactory(user=alice, **{param: value})
    items = client_for(alice).get(URL, {param: value}).json()["items"]
    assert [item[param] for item in items] == [value]


def test_filters_by_batch_and_creation_window(client_for, alice):
    now = timezone.now()
    LogFactory(user=alice, batch_id="bat_1", created_at=now - timedelta(hours=2))
    inside = LogFactory(user=alice, batch_id="bat_1", created_at=now - timedelta(hours=1))
    client = client_for(alice)
    assert client.get(URL, {"batch_id": "bat_1"}).json()["total"] == 2
    after = (now - timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    items = client.get(URL, {"created_after": after, "created_before": now.isoformat()}).json()["items"]
    assert [item["id"] for item in items] == [inside.id]


def test_pagination_pages_and_past_the_end(client_for, alice, make_logs):
    logs = make_logs(5, user=alice)
    client = client_for(alice)
    body = client.get(URL, {"page": 2, "page_size": 2}).json()
    assert [item["id"] for item in body["items"]] == [logs[2].id, logs[3].id]
    assert body["pagination"] == {
        "page": 2, "page_size": 2, "total": 5, "total_pages": 3, "has_next": True, "has_prev": True,
    }  # fmt: skip
    past = client.get(URL, {"page": 99, "page_size": 2})
    assert past.status_code == 200 and past.json()["items"] == [] and past.json()["total"] == 5


def test_page_size_above_maximum_is_clamped_to_100(client_for, alice):
    body = client_for(alice).get(URL, {"page_size": 1000}).json()
    assert body["pagination"]["page_size"] == 100


def test_huge_page_number_is_empty_not_an_error(client_for, alice):
    response = client_for(alice).get(URL, {"page": "99999999999999999999"})
    assert response.status_code == 200 and response.json()["items"] == []


@pytest.mark.parametrize("param", ["page", "page_size"])
@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", ""])
def test_bad_page_parameters_are_400_naming_the_parameter(client_for, alice, param, value):
    response = client_for(alice).get(URL, {param: value})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and param in body["message"] and list(body["errors"]) == [param]


@pytest.mark.parametrize(
    "param,allowed", [("channel", "sms, email, push"), ("status", "pending, sent, failed, delivered")]
)
def test_unknown_enum_value_is_400_listing_allowed_values(client_for, alice, param, allowed):
    response = client_for(alice).get(URL, {param: "carrier-pigeon"})
    assert response.status_code == 400
    assert allowed in response.json()["message"] and param in response.json()["errors"]


def test_bad_date_filter_is_400(client_for, alice):
    response = client_for(alice).get(URL, {"created_after": "yesterday"})
    assert response.status_code == 400 and "created_after" in response.json()["errors"]


def test_plain_user_asking_for_another_user_is_403(client_for, alice, ada):
    response = client_for(alice).get(URL, {"user_id": ada.id})
    assert response.status_code == 403 and response.json()["code"] == 403


def test_plain_user_may_name_themselves(client_for, alice):
    LogFactory(user=alice)
    assert client_for(alice).get(URL, {"user_id": alice.id}).json()["total"] == 1


def test_tenant_admin_may_read_a_user_of_their_tenant(client_for, alice, ada):
    LogFactory(user=alice)
    assert client_for(ada).get(URL, {"user_id": alice.id}).json()["total"] == 1


def test_tenant_admin_naming_another_tenants_user_gets_nothing(client_for, ada, bob):
    LogFactory(user=bob)
    response = client_for(ada).get(URL, {"user_id": bob.id})
    assert response.status_code == 200 and response.json()["total"] == 0


def test_log_of_a_user_in_another_tenant_row_is_invisible_even_if_user_moved(client_for, alice, tenant_b):
    # Data belongs to the tenant it was written in: a row of tenant B never shows in tenant A.
    LogFactory(user=alice, tenant=tenant_b)
    assert client_for(alice).get(URL).json()["total"] == 0


@pytest.mark.parametrize("page_size", [1, 100])
def test_query_count_does_not_grow_with_page_size(
    client_for, alice, make_logs, django_assert_num_queries, page_size, on_postgres
):
    make_logs(120, user=alice)
    client = client_for(alice)
    # 1 auth (user + tenant), then the page and its total: together on PostgreSQL (run_together)
    with django_assert_num_queries(2 if on_postgres else 3):
        assert len(client.get(URL, {"page_size": page_size}).json()["items"]) == page_size


def test_log_representation_has_exactly_the_declared_fields(alice):
    from communication.api.serializers import CommunicationLogSerializer

    log = LogFactory(user=alice)
    assert list(CommunicationLogSerializer(log).data) == CommunicationLogSerializer.Meta.fields
