from django.contrib.admin.utils import quote
from django.urls import reverse

from notifications.models import Notification
from notifications.services import notify

CHANGELIST = reverse("admin:notifications_notification_changelist")
SEND = reverse("admin:notifications_notification_send")


def _notify(user, title):
    notify(tenant_id=user.tenant_id, user_ids=[user.id], type="system", event_type="a.b", title=title)


def test_tenant_admin_sees_only_their_tenants_notifications(client, ada, alice, bob):
    _notify(alice, "For Alice")
    _notify(bob, "For Bob")
    client.force_login(ada)
    html = client.get(CHANGELIST).content.decode()
    assert "For Alice" in html and "For Bob" not in html and "Send notification" in html


def test_filters_and_search(client, ada, alice):
    _notify(alice, "Findable")
    # Same tenant and user, but read, of another type and another title: must NOT match.
    notify(tenant_id=alice.tenant_id, user_ids=[alice.id], type="security", event_type="a.b", title="Hidden")
    Notification.objects.filter(title="Hidden").update(is_read=True)
    findable, hidden = (Notification.objects.get(title=title).id for title in ("Findable", "Hidden"))
    client.force_login(ada)
    for params in ({"is_read__exact": "0"}, {"type__exact": "system"}, {"q": "Findable"}):
        html = client.get(CHANGELIST, params).content.decode()  # ids: the search box echoes the term
        assert f"/{quote(findable)}/change/" in html and f"/{quote(hidden)}/change/" not in html, params


def test_send_form_uses_notify_within_the_tenant(client, ada, alice, bob):
    client.force_login(ada)
    page = client.get(SEND).content.decode()
    assert "alice" in page and "bob" not in page and 'name="tenant"' not in page
    response = client.post(
        SEND,
        {
            "whole_tenant": "on",
            "type": "system",
            "event_type": "system.announcement",
            "priority": "medium",
            "title": "Hello all",
        },
    )
    assert response.status_code == 302
    assert set(Notification.objects.values_list("user__username", flat=True)) == {"ada", "alice"}


def test_send_form_shows_errors_instead_of_crashing(client, ada, alice):
    client.force_login(ada)
    page = client.post(
        SEND,
        {
            "users": [alice.id],
            "type": "system",
            "event_type": "Bad Event",
            "priority": "medium",
            "title": "x",
            "action_url": "javascript:x",
        },
    ).content.decode()
    assert "event_type must be dotted" in page
    assert not Notification.objects.exists()


def test_platform_admin_can_send_to_another_tenant(client, root, bob):
    client.force_login(root)
    response = client.post(
        SEND,
        {
            "tenant": bob.tenant_id,
            "whole_tenant": "on",
            "type": "system",
            "event_type": "a.b",
            "priority": "low",
            "title": "Hi",
        },
    )
    assert response.status_code == 302 and Notification.objects.get().user == bob


def test_plain_users_cannot_open_the_send_form(client, alice):
    client.force_login(alice)
    assert client.get(SEND).status_code == 302  # to the admin login
