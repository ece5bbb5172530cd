from django.urls import reverse

from communication.models import SyncRun
from communication.services import dispatch_pending
from tests.factories import LogFactory

SYNC = reverse("admin:communication_communicationlog_sync_status")
CHANGELIST = reverse("admin:communication_communicationlog_changelist")


def test_sync_now_runs_one_sync_and_then_respects_the_minute(client, ada, alice, fake_submail):
    LogFactory(user=alice, provider="submail", batch_id="bat_A", recipient="+8613900000001")
    dispatch_pending(batch_id="bat_A")
    fake_submail.report(list(fake_submail.messages), "delivered")
    client.force_login(ada)
    assert "Sync delivery status now" in client.get(CHANGELIST).content.decode()

    page = client.post(SYNC, follow=True).content.decode()
    assert "Status sync of submail: 1 reports read, 1 logs updated" in page
    page = client.post(SYNC, follow=True).content.decode()
    assert "polling interval (SUBMAIL: one call a minute)" in page
    assert fake_submail.calls("sms/log") == 1


def test_sync_button_is_hidden_without_submail(client, ada):
    client.force_login(ada)
    assert "Sync delivery status now" not in client.get(CHANGELIST).content.decode()


def test_sync_needs_post(client, ada, fake_submail):
    client.force_login(ada)
    assert client.get(SYNC).status_code == 403


def test_recent_sync_runs_are_listed_for_platform_admins_only(client, root, ada):
    SyncRun.objects.create(provider="submail", account="10001", received=5, applied=4, unknown=1)
    url = reverse("admin:communication_syncrun_changelist")
    client.force_login(root)
    assert "10001" in client.get(url).content.decode()
    client.force_login(ada)
    assert client.get(url).status_code == 403
