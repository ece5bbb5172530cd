"""GET /api/v1/admin/communication/logs (seed 001): roles and tenant isolation."""

import pytest

from tests.factories import LogFactory, UserFactory

URL = "/api/v1/admin/communication/logs"


@pytest.fixture
def logs(alice, ada, bob):
    return {
        "alice": LogFactory(user=alice, recipient="+8613800138000"),
        "ada": LogFactory(
            user=ada, channel="email", recipient="ada@example.com", provider="smtp", status="failed"
        ),
        "bob": LogFactory(user=bob, recipient="+8613900139000"),
    }


def _ids(response):
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["items"]}


def test_plain_user_gets_403(client_for, alice):
    response = client_for(alice).get(URL)
    assert response.status_code == 403 and response.json()["code"] == 403


def test_tenant_admin_sees_every_user_of_their_tenant_only(client_for, ada, logs):
    assert _ids(client_for(ada).get(URL)) == {logs["alice"].id, logs["ada"].id}


def test_tenant_admin_filters_by_user(client_for, ada, alice, logs):
    assert _ids(client_for(ada).get(URL, {"user_id": alice.id})) == {logs["alice"].id}


def test_tenant_admin_naming_other_tenants_user_gets_empty_list(client_for, ada, bob, logs):
    assert _ids(client_for(ada).get(URL, {"user_id": bob.id})) == set()


def test_tenant_admin_cannot_widen_scope_with_tenant_id(client_for, ada, bob, logs):
    assert _ids(client_for(ada).get(URL, {"tenant_id": bob.tenant_id})) == set()


def test_platform_admin_sees_all_tenants_and_can_narrow(client_for, root, bob, logs):
    assert _ids(client_for(root).get(URL)) == {log.id for log in logs.values()}
    assert _ids(client_for(root).get(URL, {"tenant_id": bob.tenant_id})) == {logs["bob"].id}


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"recipient": "+8613800138000"}, "alice"),
        ({"provider": "smtp"}, "ada"),
        ({"status": "failed"}, "ada"),
        ({"channel": "email"}, "ada"),
    ],
)
def test_admin_filters(client_for, ada, logs, params, expected):
    assert _ids(client_for(ada).get(URL, params)) == {logs[expected].id}


def test_admin_sees_masked_recipients_too(client_for, ada, logs):
    items = client_for(ada).get(URL, {"channel": "email"}).json()["items"]
    assert items[0]["recipient"] == "a***@example.com"


@pytest.mark.parametrize("param", ["channel", "status"])
def test_admin_unknown_enum_is_400(client_for, ada, param):
    assert client_for(ada).get(URL, {param: "nope"}).status_code == 400


def test_admin_bad_page_is_400(client_for, ada):
    assert client_for(ada).get(URL, {"page": "0"}).status_code == 400


@pytest.mark.parametrize("page_size", [1, 100])
def test_admin_query_count_does_not_grow_with_page_size(
    client_for, ada, tenant_a, make_logs, django_assert_num_queries, page_size, on_postgres
):
    for index in range(4):
        make_logs(30, user=UserFactory(username=f"member{index}", tenant=tenant_a))
    client = client_for(ada)
    # 1 auth (user + tenant), then the page and its total: together on PostgreSQL (run_together)
    with django_assert_num_queries(2 if on_postgres else 3):
        assert len(client.get(URL, {"page_size": page_size}).json()["items"]) == page_size
