"""The Django admin for logs: tenant scoping, search, read-only detail."""

import pytest
from django.urls import reverse

from tests.factories import LogFactory

CHANGELIST = reverse("admin:communication_communicationlog_changelist")


def _detail(log):
    return reverse("admin:communication_communicationlog_change", args=[log.id])


@pytest.fixture
def logs(alice, bob):
    return {
        "alice": LogFactory(user=alice, recipient="+8613700137000", provider_message_id="sendid-alice"),
        "bob": LogFactory(user=bob, recipient="+8613900139000", response='{"status":"success"}'),
        # Same tenant, differing in every searched or filtered field: must NOT match.
        "alice_other": LogFactory(
            user=alice, channel="email", provider="smtp", status="failed",
            recipient="other@example.com", provider_message_id="sendid-other",
        ),
    }  # fmt: skip


def test_tenant_admin_sees_only_their_tenants_logs(client, ada, logs):
    client.force_login(ada)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert logs["alice"].id in html and logs["bob"].id not in html
    assert "137****7000" in html and "+8613700137000" not in html


def test_tenant_admin_cannot_open_another_tenants_log_by_url(client, ada, logs):
    client.force_login(ada)
    response = client.get(_detail(logs["bob"]))
    assert response.status_code == 302  # the admin treats it as missing and redirects
    assert "doesn’t exist" in client.get(response.url).content.decode()


def test_platform_admin_sees_every_tenant_and_has_tenant_filter(client, root, logs):
    client.force_login(root)
    html = client.get(CHANGELIST).content.decode()
    assert logs["alice"].id in html and logs["bob"].id in html
    assert "By tenant" in html


@pytest.mark.parametrize("term", ["sendid-alice", "+8613700137000"])
def test_search_by_exact_provider_message_id_or_recipient(client, ada, logs, term):
    client.force_login(ada)
    html = client.get(CHANGELIST, {"q": term}).content.decode()
    assert logs["alice"].id in html and logs["alice_other"].id not in html


def test_search_by_log_id(client, ada, logs):
    client.force_login(ada)
    html = client.get(CHANGELIST, {"q": logs["alice"].id}).content.decode()
    assert logs["alice"].id in html and logs["alice_other"].id not in html


@pytest.mark.parametrize(
    "params", [{"status__exact": "pending"}, {"channel__exact": "sms"}, {"provider": "console"}]
)
def test_list_filters_work(client, ada, logs, params):
    client.force_login(ada)
    html = client.get(CHANGELIST, params).content.decode()
    assert logs["alice"].id in html and logs["alice_other"].id not in html


def test_detail_is_read_only_with_pretty_response(client, root, logs):
    client.force_login(root)
    page = client.get(_detail(logs["bob"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;status&quot;: &quot;success&quot;" in html
    assert 'name="_save"' not in html


def test_plain_user_cannot_use_the_admin(client, alice):
    client.force_login(alice)
    assert client.get(CHANGELIST).status_code == 302


def test_changelist_query_count_is_fixed(client, ada, make_logs, alice, django_assert_max_num_queries):
    make_logs(60, user=alice)
    client.force_login(ada)
    with django_assert_max_num_queries(12):
        client.get(CHANGELIST)


def test_the_detail_shows_the_messages_path_across_providers(client, ada, logs):
    from communication.models import DeliveryAttempt

    log = logs["alice"]
    DeliveryAttempt.objects.create(
        log=log, provider="submail", error="SUBMAIL could not be reached", next_provider="aliyun"
    )
    client.force_login(ada)
    html = client.get(_detail(log)).content.decode()
    assert "SUBMAIL could not be reached" in html and ">aliyun<" in html
    assert 'name="delivery_attempts-0-error"' not in html  # read-only: shown, not editable
