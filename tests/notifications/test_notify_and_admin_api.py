"""notify() and POST /api/v1/admin/notifications."""

import pytest
from django.core.management import call_command
from django.utils import timezone

from authms.errors import NotFoundError, ValidationError
from notifications.models import Notification
from notifications.services import notify
from tests.factories import UserFactory

URL = "/api/v1/admin/notifications"


def _body(**overrides):
    return {
        "audience": "tenant",
        "type": "system",
        "event_type": "status.incident.created",
        "title": "Maintenance",
        **overrides,
    }


def test_whole_tenant_gets_one_each_in_batches_of_1000(
    tenant_a, tenant_b, alice, bob, django_assert_max_num_queries
):
    for index in range(1500):
        UserFactory.build(username=f"m{index}", tenant=tenant_a).save()
    with django_assert_max_num_queries(8):  # user id stream, 2 INSERTs, transaction
        created = notify(
            tenant_id=tenant_a.id, whole_tenant=True, type="system", event_type="a.b", title="Hi"
        )
    assert created == 1501 and Notification.objects.filter(tenant=tenant_a).count() == 1501
    assert not Notification.objects.filter(tenant=tenant_b).exists()


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"type": "spam"}, "type"),
        ({"event_type": "NoDots"}, "event_type"),
        ({"event_type": "a..b"}, "event_type"),
        ({"priority": "extreme"}, "priority"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"action_url": "javascript:alert(1)"}, "action_url"),
        ({"action_url": "http://example.com"}, "action_url"),
        ({"action_url": "//evil.example/x"}, "action_url"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
    ],
)
def test_notify_refuses_bad_fields(alice, fields, field):
    base = {"type": "system", "event_type": "a.b", "title": "t"}
    with pytest.raises(ValidationError) as error:
        notify(tenant_id=alice.tenant_id, user_ids=[alice.id], **{**base, **fields})
    assert field in error.value.errors


def test_notify_accepts_https_and_relative_action_urls(alice):
    for url in ("/security", "https://status.example.com/incidents/1"):
        notify(
            tenant_id=alice.tenant_id,
            user_ids=[alice.id],
            type="system",
            event_type="a.b",
            title="t",
            action_url=url,
        )
    assert Notification.objects.count() == 2


def test_notify_refuses_unknown_and_other_tenant_users(alice, bob):
    with pytest.raises(NotFoundError):
        notify(
            tenant_id=alice.tenant_id, user_ids=[alice.id, bob.id], type="system", event_type="a.b", title="t"
        )
    assert not Notification.objects.exists()


def test_tenant_admin_notifies_the_whole_tenant(client_for, ada, alice, bob):
    response = client_for(ada).post(URL, _body(), format="json")
    assert response.status_code == 201 and response.json()["data"] == {"created": 2}
    assert set(Notification.objects.values_list("user__username", flat=True)) == {"ada", "alice"}


def test_tenant_admin_notifies_one_user_or_a_list(client_for, ada, alice):
    client = client_for(ada)
    assert client.post(URL, _body(audience="user", user_id=alice.id), format="json").json()["data"] == {
        "created": 1
    }
    response = client.post(URL, _body(audience="users", user_ids=[alice.id, ada.id, alice.id]), format="json")
    assert response.json()["data"] == {"created": 2}


def test_plain_user_gets_403(client_for, alice):
    assert client_for(alice).post(URL, _body(), format="json").status_code == 403


@pytest.mark.parametrize(
    "overrides,status,field",
    [
        ({"audience": "users", "user_ids": []}, 400, "user_ids"),
        ({"audience": "user"}, 400, "user_id"),
        ({"audience": "everyone"}, 400, "audience"),
        ({"title": "x" * 201}, 400, "title"),
        ({"action_url": "javascript:alert(1)"}, 400, "action_url"),
        ({"type": "spam"}, 400, "type"),
        ({"metadata": "{}"}, 400, "metadata"),
        ({"audience": "users", "user_ids": ["usr_nobody"]}, 404, None),
    ],
)
def test_admin_create_bad_input(client_for, ada, overrides, status, field):
    response = client_for(ada).post(URL, _body(**overrides), format="json")
    assert response.status_code == status, response.content
    if field:
        assert field in response.json()["errors"]
    assert not Notification.objects.exists()


def test_tenant_admin_cannot_reach_another_tenant(client_for, ada, bob):
    client = client_for(ada)
    assert client.post(URL, _body(audience="user", user_id=bob.id), format="json").status_code == 404
    assert client.post(URL, _body(tenant_id=bob.tenant_id), format="json").status_code == 403
    assert not Notification.objects.exists()


def test_platform_admin_may_target_any_tenant(client_for, root, bob):
    response = client_for(root).post(URL, _body(tenant_id=bob.tenant_id), format="json")
    assert response.json()["data"] == {"created": 1}
    assert client_for(root).post(URL, _body(tenant_id="tnt_nope"), format="json").status_code == 404


def test_purge_deletes_old_read_ones_by_default_in_batches(alice):
    for _ in range(5):
        notify(tenant_id=alice.tenant_id, user_ids=[alice.id], type="system", event_type="a.b", title="t")
    old = timezone.now() - timezone.timedelta(days=100)
    Notification.objects.update(created_at=old)
    Notification.objects.filter(id__in=list(Notification.objects.values_list("id", flat=True)[:3])).update(
        is_read=True
    )
    call_command("purge_notifications", "--older-than", "90d", "--batch-size", "2")
    assert Notification.objects.count() == 2 and not Notification.objects.filter(is_read=True).exists()
    call_command("purge_notifications", "--older-than", "90d", "--include-unread")
    assert not Notification.objects.exists()


def test_purge_refuses_a_bad_age(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="duration"):
        call_command("purge_notifications", "--older-than", "soon")


def test_an_oversized_user_list_is_one_error(client_for, ada):
    response = client_for(ada).post(URL, _body(audience="users", user_ids=[1] * 20_000), format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["user_ids"]
