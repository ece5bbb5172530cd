"""The staff audit trail: who did what, when, on which objects; platform admins read it."""

from django.contrib.admin.models import LogEntry
from django.urls import reverse

from communication.models import Suppression
from tests.factories import LogFactory

AUDIT = reverse("admin:admin_logentry_changelist")
LOGS = reverse("admin:communication_communicationlog_changelist")


def test_console_actions_are_recorded_with_their_objects_and_only_platform_admins_read_them(
    client, ada, root, alice, recording_provider, settings
):
    failed = LogFactory(user=alice, status="failed", provider="recording")
    untouched = LogFactory(user=alice, status="failed", provider="recording")  # not selected: no entry
    client.force_login(ada)
    client.post(LOGS, {"action": "retry_failed", "_selected_action": [failed.id]})
    suppression = Suppression.objects.create(tenant=ada.tenant, channel="sms", recipient="+8613800138000")
    client.post(
        reverse("admin:communication_suppression_changelist"),
        {"action": "lift", "_selected_action": [suppression.pk], "note": "Customer asked (ticket 9)"},
    )
    client.post(
        reverse("admin:notifications_notification_send"),
        {"whole_tenant": "on", "type": "system", "event_type": "system.announcement", "priority": "medium",
         "title": "Maintenance tonight"},
    )  # fmt: skip

    entries = list(LogEntry.objects.filter(user=ada).order_by("action_time", "id"))
    retry, lift, notice = entries
    assert (retry.object_id, retry.change_message) == (
        failed.id,
        f"Retried as {LogFactory._meta.model.objects.get(retry_of=failed.id).batch_id}",
    )
    assert lift.change_message == "Lifted 1 suppression(s): Customer asked (ticket 9)"
    assert notice.change_message.startswith("Sent notification 'Maintenance tonight' to ")
    assert not LogEntry.objects.filter(object_id=untouched.id).exists()

    assert client.get(AUDIT).status_code == 403  # tenant admins do not read the trail
    client.force_login(root)
    page = client.get(AUDIT).content.decode()
    assert "Retried as" in page and "Customer asked (ticket 9)" in page and "Maintenance tonight" in page
    assert client.get(reverse("admin:admin_logentry_delete", args=[retry.pk])).status_code == 403


def test_a_provider_order_change_is_in_the_trail(client, root, tenant_a):
    client.force_login(root)
    url = reverse("admin:authms_tenant_change", args=[tenant_a.pk])
    form = {"name": tenant_a.name, "slug": tenant_a.slug, "is_active": "on", "sms_providers": "console"}
    assert client.post(url, form).status_code == 302
    entry = LogEntry.objects.get(object_id=str(tenant_a.pk))
    assert "Sms providers" in entry.get_change_message() or "SMS providers" in entry.get_change_message()
