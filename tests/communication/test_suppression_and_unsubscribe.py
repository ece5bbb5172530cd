from django.urls import reverse
from rest_framework.test import APIClient

from communication.models import Suppression
from communication.unsubscribe import unsubscribe_token

SUPPRESSION_ADD = reverse("admin:communication_suppression_add")


def test_staff_add_suppression_normalised_into_their_tenant(client, ada):
    client.force_login(ada)
    response = client.post(
        SUPPRESSION_ADD, {"channel": "sms", "recipient": "138 0013 8000", "reason": "manual"}
    )
    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert (suppression.tenant_id, suppression.recipient) == (ada.tenant_id, "+8613800138000")


def test_duplicate_or_invalid_suppression_is_a_form_error(client, ada):
    Suppression.objects.create(tenant=ada.tenant, channel="sms", recipient="+8613800138000")
    client.force_login(ada)
    duplicate = client.post(
        SUPPRESSION_ADD, {"channel": "sms", "recipient": "13800138000", "reason": "manual"}
    )
    assert duplicate.status_code == 200 and "already exists" in duplicate.content.decode()
    invalid = client.post(SUPPRESSION_ADD, {"channel": "sms", "recipient": "12", "reason": "manual"})
    assert invalid.status_code == 200 and "Not a valid phone number" in invalid.content.decode()


def test_staff_remove_a_suppression_by_lifting_it_with_a_reason(client, ada):
    suppression = Suppression.objects.create(tenant=ada.tenant, channel="sms", recipient="+8613800138000")
    client.force_login(ada)
    url = reverse("admin:communication_suppression_delete", args=[suppression.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403  # not without a reason
    lift = {"action": "lift", "_selected_action": [suppression.pk], "note": "Asked to be texted again."}
    assert client.post(reverse("admin:communication_suppression_changelist"), lift).status_code == 302
    assert not Suppression.objects.exists()


def _url(token):
    return f"/api/v1/communication/unsubscribe/{token}"


def test_unsubscribe_link_shows_a_confirmation_page_and_get_changes_nothing(tenant_a):
    token = unsubscribe_token(tenant_id=tenant_a.id, channel="email", recipient="ann@example.com")
    page = APIClient().get(_url(token))
    assert page.status_code == 200 and b"ann@example.com" in page.content and b"<form" in page.content
    assert not Suppression.objects.exists()


def test_person_confirming_in_a_browser_sees_a_page(tenant_a):
    token = unsubscribe_token(tenant_id=tenant_a.id, channel="email", recipient="ann@example.com")
    page = APIClient().post(_url(token), {"List-Unsubscribe": "One-Click"}, HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"Unsubscribed" in page.content
    assert Suppression.objects.filter(
        tenant=tenant_a, recipient="ann@example.com", reason="unsubscribed"
    ).exists()


def test_unsubscribing_twice_is_harmless(tenant_a):
    token = unsubscribe_token(tenant_id=tenant_a.id, channel="email", recipient="ann@example.com")
    for _ in range(2):
        assert APIClient().post(_url(token)).status_code == 200
    assert Suppression.objects.count() == 1


def test_forged_or_tampered_link_is_404(tenant_a):
    token = unsubscribe_token(tenant_id=tenant_a.id, channel="email", recipient="ann@example.com")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert APIClient().post(_url(tampered)).status_code == 404
    assert APIClient().get(_url("garbage")).status_code == 404
    assert not Suppression.objects.exists()
