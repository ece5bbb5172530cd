"""The log lists' `total` without COUNT over the table (#20 item 1): from the maintained log
counts (per tenant, per user) when the list's filters are ones they answer, else an exact COUNT
capped at LOG_LIST_COUNT_CAP (`total_is_capped: true`)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import LogFactory

USER_URL = "/api/v1/communication/logs"
ADMIN_URL = "/api/v1/admin/communication/logs"


def _counted_the_log_table(queries) -> bool:
    return any(
        "COUNT(" in query["sql"].upper() and '"communication_log"' in query["sql"] for query in queries
    )


@pytest.fixture
def mixed_logs(alice, ada, bob):
    """Acme: alice and ada, several channels, statuses and providers; Globex: bob (never counted for Acme)."""
    for status, count in (("delivered", 5), ("failed", 3), ("pending", 2)):
        LogFactory.create_batch(count, user=alice, status=status, provider="submail")
    LogFactory.create_batch(2, user=alice, status="failed", status_detail="rejected", provider="submail")
    LogFactory.create_batch(1, user=ada, status="failed", status_detail="rejected", provider="aliyun")
    LogFactory.create_batch(4, user=ada, status="delivered", provider="aliyun")
    LogFactory.create_batch(
        2, user=alice, channel="email", recipient="a@example.com", provider="smtp", status="sent"
    )
    LogFactory.create_batch(6, user=bob, status="delivered", provider="submail")


@pytest.mark.parametrize(
    "filters",
    [{}, {"status": "delivered"}, {"provider": "submail"}, {"channel": "email"},
     {"status": "delivered", "provider": "aliyun"}, {"status": "delivered", "channel": "sms", "provider": "submail"},
     {"status": "failed", "page_size": "2"}, {"provider": ""}, {"status_detail": "rejected"},
     {"provider": "submail", "status_detail": "rejected"}],
)  # fmt: skip
def test_admin_totals_for_counted_filters_come_from_the_maintained_counts(
    client_for, ada, mixed_logs, filters
):
    client = client_for(ada)
    with CaptureQueriesContext(connection) as queries:
        body = client.get(ADMIN_URL, {**filters, "page_size": filters.get("page_size", "1")}).json()
    counted_the_table = _counted_the_log_table(
        queries.captured_queries
    )  # before the next request clears them
    expected = client.get(
        ADMIN_URL, {**filters, "page_size": "100"}
    ).json()  # a short page: counted by length
    assert body["total"] == expected["total"] == len(expected["items"])
    assert body["total_is_capped"] is False
    assert not counted_the_table


def test_the_platform_admin_counts_one_tenant_or_all(client_for, root, alice, bob, mixed_logs):
    client = client_for(root)
    totals = {
        tenant: client.get(ADMIN_URL, {"page_size": 1, **({"tenant_id": tenant} if tenant else {})}).json()[
            "total"
        ]
        for tenant in ("", alice.tenant_id, bob.tenant_id)
    }
    assert totals == {"": 25, alice.tenant_id: 19, bob.tenant_id: 6}


def test_a_tenant_admin_naming_another_tenant_counts_nothing(client_for, ada, bob, mixed_logs):
    for page in ("1", "2"):  # the second page counts before reading
        body = (
            client_for(ada).get(ADMIN_URL, {"tenant_id": bob.tenant_id, "page_size": 1, "page": page}).json()
        )
        assert body["total"] == 0 and body["items"] == []


def test_a_filter_named_twice_counts_its_last_value_as_the_list_shows_it(client_for, ada, root, mixed_logs):
    """The total reads the lookups the list runs on: the last of repeated values, from the
    maintained counts, the same for every list."""
    for client, query in (
        (client_for(ada), "status=failed&status=delivered&provider=submail&provider=aliyun"),
        (
            client_for(root),
            f"tenant_id={ada.tenant_id}&tenant_id={ada.tenant_id}&status=sent&status=delivered",
        ),
        (client_for(ada), f"status=failed&status=delivered&user_id=usr_nobody&user_id={ada.id}"),
    ):
        with CaptureQueriesContext(connection) as queries:
            body = client.get(f"{ADMIN_URL}?{query}&page_size=1").json()
        counted_the_table = _counted_the_log_table(queries.captured_queries)
        listed = client.get(f"{ADMIN_URL}?{query}&page_size=100").json()["items"]
        assert body["total"] == len(listed) > 0, query
        assert {item["status"] for item in listed} == {"delivered"}, query
        assert not counted_the_table, query


@pytest.mark.parametrize(
    "filters",
    [{}, {"status": "delivered"}, {"status": "failed"}, {"channel": "email"}, {"channel": "sms", "status": "pending"},
     {"status": ""}, {"status_detail": "rejected"}, {"status": "failed", "status_detail": "rejected"}],
)  # fmt: skip
def test_one_users_totals_come_from_the_per_user_counts(client_for, alice, ada, mixed_logs, filters):
    """The user list, and the admin list by user_id: alice's logs only (ada's, same tenant and
    statuses, must not count), from LogUserCount with no COUNT over the log table."""
    for client, url, params in (
        (client_for(alice), USER_URL, filters),
        (client_for(ada), USER_URL, {**filters, "user_id": alice.id}),
        (client_for(ada), ADMIN_URL, {**filters, "user_id": alice.id}),
    ):
        with CaptureQueriesContext(connection) as queries:
            body = client.get(url, {**params, "page_size": "1"}).json()
        counted_the_table = _counted_the_log_table(queries.captured_queries)
        expected = client.get(url, {**params, "page_size": "100"}).json()
        assert body["total"] == expected["total"] == len(expected["items"]) > 0, (url, params)
        assert {item["user_id"] for item in expected["items"]} == {alice.id}
        assert body["total_is_capped"] is False and not counted_the_table, (url, params)


def test_other_filters_count_exactly_up_to_the_cap_then_say_it_is_capped(
    client_for, alice, ada, mixed_logs, settings
):
    settings.LOG_LIST_COUNT_CAP = 5
    client = client_for(ada)
    # A provider with a user is not a set of filters the counts answer.
    below = client.get(ADMIN_URL, {"user_id": ada.id, "provider": "aliyun", "page_size": 2}).json()  # 5 logs
    assert below["total"] == 5 and below["total_is_capped"] is False
    alices = {"user_id": alice.id, "provider": "submail"}  # 12 logs
    first = client.get(ADMIN_URL, {**alices, "page_size": 2}).json()
    assert (
        first["total"] == 5 and first["total_is_capped"] is True and first["pagination"]["has_next"] is True
    )
    third = client.get(ADMIN_URL, {**alices, "page_size": 2, "page": 3}).json()  # past the cap: still read
    assert (
        len(third["items"]) == 2
        and third["total_is_capped"] is True
        and third["pagination"]["has_next"] is True
    )
    last = client.get(ADMIN_URL, {**alices, "page_size": 5, "page": 3}).json()
    assert len(last["items"]) == 2 and last["pagination"]["has_next"] is False
    batch = {"batch_id": "bat_1", "page_size": 2}  # the user list by batch: a capped COUNT
    LogFactory.create_batch(6, user=alice, batch_id="bat_1")
    mine = client_for(alice).get(USER_URL, batch).json()
    assert mine["total"] == 5 and mine["total_is_capped"] is True


def test_a_page_far_beyond_a_capped_total_is_empty_not_an_error(client_for, alice, mixed_logs, settings):
    settings.LOG_LIST_COUNT_CAP = 2
    for page in ("1000", "99999999999999999999"):
        response = client_for(alice).get(USER_URL, {"page": page, "page_size": 1})
        assert response.status_code == 200 and response.json()["items"] == []


def test_deep_pages_read_ids_first_and_return_the_same_rows(client_for, ada, mixed_logs, monkeypatch):
    """Past DEFERRED_OFFSET a page reads its ids, then its rows: the same rows, in order."""
    from authms.api import pagination

    client = client_for(ada)
    shallow = [client.get(ADMIN_URL, {"page_size": 3, "page": page}).json()["items"] for page in range(1, 8)]
    monkeypatch.setattr(pagination, "DEFERRED_OFFSET", 3)
    with CaptureQueriesContext(connection) as queries:
        deep = [client.get(ADMIN_URL, {"page_size": 3, "page": page}).json()["items"] for page in range(1, 8)]
    assert deep == shallow and sum(map(len, deep)) == 19
    id_reads = [
        q["sql"]
        for q in queries.captured_queries
        if 'IN (SELECT "communication_log"."id" AS "pk" FROM' in q["sql"]
    ]
    assert len(id_reads) == 6  # pages 2-7 (page 7 is short; page 1 never defers)
