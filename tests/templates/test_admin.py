"""Template admin: tenant scoping, validation without 500s, and the live preview assets."""

from django.urls import reverse

from templates.models import Template

ADD = reverse("admin:message_templates_template_add")
CHANGELIST = reverse("admin:message_templates_template_changelist")


def _form(**overrides):
    return {
        "code": "verify_code",
        "channel": "sms",
        "name": "Verification code",
        "is_active": "on",
        "subject": "",
        "body": "Your code is {{code}}",
        "provider_codes": "{}",
        "category": "security",
        "sample_variables": '{"code": "123456"}',
        **overrides,
    }


def test_tenant_admin_creates_a_template_in_their_own_tenant(client, ada):
    client.force_login(ada)
    response = client.post(ADD, _form())
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Template.objects.get(code="verify_code").tenant_id == ada.tenant_id


def test_duplicate_code_and_channel_is_a_form_error_not_a_crash(client, ada):
    Template.objects.create(tenant=ada.tenant, code="verify_code", channel="sms", name="x", body="x")
    client.force_login(ada)
    response = client.post(ADD, _form())
    assert response.status_code == 200 and "already exists" in response.content.decode()


def test_same_code_in_another_tenant_is_fine(client, ada, tenant_b):
    Template.objects.create(tenant=tenant_b, code="verify_code", channel="sms", name="x", body="x")
    client.force_login(ada)
    assert client.post(ADD, _form()).status_code == 302


def test_malformed_placeholder_and_bad_sample_json_are_form_errors(client, ada):
    client.force_login(ada)
    page = client.post(ADD, _form(body="Code {{ code", sample_variables="{nope")).content.decode()
    assert "placeholder is malformed" in page and "Not valid JSON" in page


def test_tenant_admin_sees_only_their_templates(client, ada, tenant_b):
    Template.objects.create(tenant=tenant_b, code="theirs", channel="sms", name="Theirs", body="x")
    Template.objects.create(tenant=ada.tenant, code="ours", channel="sms", name="Ours", body="x")
    client.force_login(ada)
    html = client.get(CHANGELIST).content.decode()
    assert "ours" in html and "theirs" not in html


def test_change_form_carries_the_live_preview_script_served_locally(client, ada):
    client.force_login(ada)
    html = client.get(ADD).content.decode()
    assert "message_templates/template_preview.js" in html and 'name="tenant"' not in html
    assert client.get("/static/message_templates/template_preview.js").status_code == 200


def test_platform_admin_picks_the_tenant(client, root):
    client.force_login(root)
    assert 'name="tenant"' in client.get(ADD).content.decode()


def test_send_test_message_goes_to_my_own_phone_through_the_pipeline(
    client, ada, recording_provider, django_capture_on_commit_callbacks
):
    ada.phone = "+8613600136000"
    ada.save()
    template = Template.objects.create(
        tenant=ada.tenant, code="otp", channel="sms", name="OTP", body="Code {{code}}"
    )
    client.force_login(ada)
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            CHANGELIST, {"action": "send_test_message", "_selected_action": [template.id]}, follow=True
        )
    assert "Test of otp queued to +8613600136000" in page.content.decode()
    (message,) = recording_provider.received
    assert message.recipient == "+8613600136000" and message.body == "Code <code>"


def test_send_test_message_asks_for_an_address_first(client, ada):
    template = Template.objects.create(
        tenant=ada.tenant, code="mail", channel="email", name="M", subject="s", body="b"
    )
    ada.email = ""
    ada.save()
    client.force_login(ada)
    page = client.post(
        CHANGELIST, {"action": "send_test_message", "_selected_action": [template.id]}, follow=True
    )
    assert "Add your email address to your user first" in page.content.decode()


def test_editing_a_template_warns_when_pending_messages_use_it(client, ada, alice):
    from tests.factories import LogFactory

    template = Template.objects.create(tenant=ada.tenant, code="otp", channel="sms", name="OTP", body="x")
    LogFactory(user=alice, template=template, status="pending")
    client.force_login(ada)
    page = client.get(reverse("admin:message_templates_template_change", args=[template.id])).content.decode()
    assert "1 pending message uses this template" in page
