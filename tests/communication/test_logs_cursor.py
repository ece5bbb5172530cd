"""Cursor pages (`?cursor=`) for both log lists (#20): keyset pages on (created_at, id), stable
while logs arrive, filters applied as in page mode, and bad cursors a 400 with the envelope."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authms.api.cursor import encode_cursor
from tests.factories import LogFactory

USER_URL = "/api/v1/communication/logs"
ADMIN_URL = "/api/v1/admin/communication/logs"


def _walk(client, url, params):
    """Every id, page by page, following next_cursor."""
    ids, cursor = [], ""
    while True:
        body = client.get(url, {**params, "cursor": cursor}).json()
        assert body["code"] == 200 and "total" not in body
        ids += [item["id"] for item in body["items"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return ids
        cursor = body["next_cursor"]


def test_the_cursor_walks_my_logs_newest_first_with_the_filter_applied(client_for, alice, ada, make_logs):
    sms = make_logs(7, user=alice, channel="sms")
    email = make_logs(3, user=alice, channel="email", recipient="a@example.com", provider="smtp")
    make_logs(2, user=ada, channel="sms")  # same tenant, another user: never in alice's list
    client = client_for(alice)
    assert _walk(client, USER_URL, {"page_size": 3}) == [
        log.id for log in sorted(sms + email, key=lambda log: (log.created_at, log.id), reverse=True)
    ]
    assert _walk(client, USER_URL, {"page_size": 3, "channel": "sms"}) == [log.id for log in sms]


def test_logs_arriving_while_paging_neither_shift_nor_repeat_a_page(client_for, alice, make_logs):
    old = make_logs(6, user=alice)
    client = client_for(alice)
    first = client.get(USER_URL, {"cursor": "", "page_size": 3}).json()
    LogFactory.create_batch(4, user=alice, created_at=timezone.now() + timedelta(seconds=5))
    second = client.get(USER_URL, {"cursor": first["next_cursor"], "page_size": 3}).json()
    assert [item["id"] for item in first["items"] + second["items"]] == [log.id for log in old]
    assert second["has_more"] is False


def test_admins_page_the_tenant_by_cursor_and_see_no_other_tenant(client_for, ada, alice, bob, make_logs):
    mine = make_logs(4, user=alice, status="failed") + make_logs(2, user=ada, status="failed")
    make_logs(3, user=alice, status="delivered")  # same tenant, filtered out
    make_logs(3, user=bob, status="failed")  # another tenant
    walked = _walk(client_for(ada), ADMIN_URL, {"page_size": 4, "status": "failed"})
    assert sorted(walked) == sorted(log.id for log in mine) and len(walked) == 6


def test_logs_of_one_moment_are_walked_by_id_through_both_lists(client_for, alice, ada):
    """A bulk's logs share one creation time: the cursor goes on by id, none skipped or repeated."""
    moment = timezone.now()
    same = [LogFactory(user=alice, created_at=moment) for _ in range(5)]
    older = LogFactory(user=alice, created_at=moment - timedelta(seconds=1))
    expected = [log.id for log in sorted(same, key=lambda log: log.id, reverse=True)] + [older.id]
    assert _walk(client_for(alice), USER_URL, {"page_size": 2}) == expected
    assert _walk(client_for(ada), ADMIN_URL, {"page_size": 2}) == expected


def test_a_cursor_page_is_one_prepared_statement_after_the_user_on_postgresql(
    client_for, alice, make_logs, on_postgres
):
    make_logs(5, user=alice)
    client = client_for(alice)
    cursor = client.get(USER_URL, {"cursor": "", "page_size": 2}).json()["next_cursor"]
    client.get(USER_URL, {"cursor": cursor, "page_size": 2})  # prepares this session's statement
    with CaptureQueriesContext(connection) as queries:
        body = client.get(USER_URL, {"cursor": cursor, "page_size": 2}).json()
    assert len(body["items"]) == 2 and body["has_more"]
    assert len(queries.captured_queries) == 2  # the request's user, then the page
    if on_postgres:
        assert queries.captured_queries[-1]["sql"].startswith("EXECUTE authms_")


@pytest.mark.parametrize("url", [USER_URL, ADMIN_URL])
@pytest.mark.parametrize(
    "cursor",
    ["garbage", "%%%", "W10", "WyJub3QgYSBkYXRlIiwibG9nXzEiXQ", encode_cursor(timezone.now(), "x" * 65)],
)
def test_a_cursor_that_is_not_one_is_a_400(client_for, ada, url, cursor):
    response = client_for(ada).get(url, {"cursor": cursor})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and list(body["errors"]) == ["cursor"]


@pytest.mark.parametrize("url", [USER_URL, ADMIN_URL])
def test_cursor_and_page_together_is_a_400(client_for, ada, url):
    response = client_for(ada).get(url, {"cursor": "", "page": "2"})
    assert response.status_code == 400 and "cursor" in response.json()["errors"]


def test_a_cursor_past_the_last_log_is_an_empty_last_page(client_for, alice, make_logs):
    oldest = make_logs(2, user=alice)[-1]
    body = client_for(alice).get(USER_URL, {"cursor": encode_cursor(oldest.created_at, oldest.id)}).json()
    assert body["items"] == [] and body["has_more"] is False and body["next_cursor"] is None
