"""Who may do what in the admin, for every registered model."""

import pytest
from django.contrib import admin
from django.urls import reverse

from authms.models import User
from tests.factories import UserFactory

# model → (tenant admin may view, may add)
EXPECTED = {
    "authms.tenant": (False, False),
    "authms.user": (True, True),
    "communication.communicationlog": (True, False),
    "communication.batch": (True, False),
    "communication.suppression": (True, True),
    "communication.suppressionlift": (True, False),
    "communication.device": (True, False),
    "communication.preference": (True, False),
    "communication.price": (False, False),
    "communication.webhookendpoint": (True, True),
    "communication.webhookdelivery": (True, False),
    "communication.syncrun": (False, False),
    "communication.providerhealth": (False, False),
    "communication.providerswitch": (False, False),
    "message_templates.template": (True, True),
    "notifications.notification": (True, False),
    "auth.group": (False, False),
    "admin.logentry": (False, False),
}


def _url(label, view):
    app_label, model = label.split(".")
    return reverse(f"admin:{app_label}_{model}_{view}")


def test_every_registered_model_is_covered():
    registered = {f"{model._meta.app_label}.{model._meta.model_name}" for model in admin.site._registry}
    assert registered == set(EXPECTED)


@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_tenant_admin_permissions(client, ada, label):
    may_view, may_add = EXPECTED[label]
    client.force_login(ada)
    assert client.get(_url(label, "changelist")).status_code == (200 if may_view else 403)
    assert client.get(_url(label, "add")).status_code == (200 if may_add else 403)


@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_platform_admin_sees_everything(client, root, label):
    client.force_login(root)
    assert client.get(_url(label, "changelist")).status_code == 200


@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_plain_users_are_sent_to_the_login_page(client, alice, label):
    client.force_login(alice)
    response = client.get(_url(label, "changelist"))
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_staff_without_the_tenant_admin_group_sees_nothing(client, tenant_a):
    client.force_login(UserFactory(username="loose", tenant=tenant_a, is_staff=True))
    assert client.get(_url("communication.communicationlog", "changelist")).status_code == 403


def test_tenant_admin_cannot_edit_users_of_other_tenants_or_superusers(client, ada, bob, root):
    client.force_login(ada)
    assert (
        client.get(reverse("admin:authms_user_change", args=[bob.id])).status_code == 302
    )  # "does not exist"
    page = client.get(reverse("admin:authms_user_change", args=[root.id]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_tenant_admin_cannot_grant_platform_rights(client, ada, alice):
    client.force_login(ada)
    html = client.get(reverse("admin:authms_user_change", args=[alice.id])).content.decode()
    assert (
        'name="is_superuser"' not in html
        and 'name="groups"' not in html
        and 'name="user_permissions"' not in html
    )


def test_a_new_tenant_admin_made_in_the_admin_joins_the_group(client, ada, alice):
    client.force_login(ada)
    form = {
        "username": "alice",
        "email": "alice@example.com",
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "phone": "",
        "first_name": "",
        "last_name": "",
    }
    response = client.post(reverse("admin:authms_user_change", args=[alice.id]), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    alice = User.objects.get(id=alice.id)
    assert alice.is_staff and not alice.is_superuser and alice.groups.filter(name="Tenant admins").exists()


def test_create_user_staff_gets_the_group(tenant_a):
    from django.core.management import call_command

    call_command("create_user", "carol", tenant="acme", password="Corr3ct-Horse!", staff=True)
    assert User.objects.get(username="carol").has_perm("communication.view_communicationlog")


def test_another_tenants_template_page_tells_nothing_about_its_pending_messages(client, ada, bob):
    from communication.models import CommunicationLog
    from templates.models import Template
    from tests.factories import LogFactory

    theirs = Template.objects.create(tenant=bob.tenant, code="otp", channel="sms", name="OTP", body="x")
    LogFactory(user=bob, template=theirs, status="pending")
    assert CommunicationLog.objects.filter(template=theirs).count() == 1
    client.force_login(ada)
    response = client.get(reverse("admin:message_templates_template_change", args=[theirs.pk]), follow=True)
    assert "pending message" not in response.content.decode()


def test_view_site_favicon_and_the_error_page(client, ada, settings):
    client.force_login(ada)
    page = client.get(reverse("admin:index")).content.decode()
    assert 'href="/api/v1/docs"' in page and 'rel="icon"' in page
    assert client.get("/api/v1/docs").status_code == 200
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 301 and favicon["Location"].endswith("/authms/favicon.svg")

    from django.test import RequestFactory

    from authms.urls import handler500

    response = handler500(RequestFactory().get("/admin/"))
    assert response.status_code == 500 and b'id="request-id"' in response.content
