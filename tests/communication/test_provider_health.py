"""Providers leave the rotation when they stop taking messages, are probed, and come back."""

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from communication.models import CommunicationLog, ProviderHealth, ProviderSwitch, SyncRun
from communication.services import bulk_send, dispatch_pending, health
from communication.services.health import providers_health_check, record_call
from notifications.models import Notification
from providers.base import SendResult
from templates.models import Template

PROVIDERS = ["submail", "aliyun"]


@pytest.fixture
def route(settings, fake_submail, fake_aliyun, tenant_a):
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "submail"}
    settings.FAILOVER_PROVIDERS = {"sms": ["aliyun"]}
    settings.HEALTH_STATE_TTL_SECONDS = 0
    cache.clear()
    Template.objects.create(
        tenant=tenant_a, code="otp", channel="sms", name="OTP", body="Code {{code}}",
        provider_codes={"submail": "H5OSN4", "aliyun": "SMS_100"},
    )  # fmt: skip
    return fake_submail, fake_aliyun


def _send(alice, n, start=0):
    result = bulk_send(
        actor=alice, channel="sms", recipients=[f"+86139{start + i:08d}" for i in range(n)],
        template="otp", variables={"code": "1"},
    )  # fmt: skip
    dispatch_pending(batch_id=result.batch.id)
    return list(CommunicationLog.objects.filter(batch_id=result.batch.id))


def test_a_provider_that_stops_taking_messages_leaves_the_rotation_once_and_staff_are_told(
    route, alice, root, django_capture_on_commit_callbacks
):
    submail, aliyun = route
    submail.stop()
    _send(alice, 30)  # every message failed over: 30 not handed over by SUBMAIL
    with django_capture_on_commit_callbacks(execute=True):
        assert providers_health_check(PROVIDERS) == ["submail: out"]
    assert providers_health_check(PROVIDERS) == []  # one switch, one audit row
    (switch,) = ProviderSwitch.objects.all()
    assert (switch.provider, switch.state) == ("submail", "out") and "100% of 30 messages" in switch.reason
    notice = Notification.objects.get(user=root)
    assert (notice.event_type, notice.title) == ("provider.health.out", "submail taken out of rotation")
    assert not Notification.objects.filter(user=alice, type="system").exists()  # platform staff only


def test_out_of_rotation_new_messages_go_to_the_next_provider_without_trying_the_first(
    route, alice, settings
):
    submail, aliyun = route
    settings.HEALTH_PROBE_SHARE = 0.0
    ProviderHealth.objects.create(provider="submail", state="out")
    logs = _send(alice, 5)
    assert {(log.provider, log.status) for log in logs} == {("aliyun", "sent")}
    assert submail.requests == []
    assert not any(log.delivery_attempts.exists() for log in logs)  # no failed attempt first


def test_probes_bring_a_recovered_provider_back_with_hysteresis(route, alice, settings, monkeypatch):

    ProviderHealth.objects.create(provider="submail", state="out")
    ProviderHealth.objects.filter(provider="submail").update(changed_at="2020-01-01T00:00:00Z")
    settings.HEALTH_PROBE_SHARE = 1.0  # every message probes
    logs = _send(alice, 25)
    assert {(log.provider, log.status) for log in logs} == {("submail", "sent")}
    assert providers_health_check(PROVIDERS) == ["submail: in"]
    assert ProviderSwitch.objects.get().reason.startswith("probes handed over 100% of 25")

    # Back in, one failing call in five is not enough to leave again (out at 50 %).
    cache.clear()
    for _ in range(4):
        record_call("submail", [SendResult.sent("x")] * 10, 0.1)
    record_call("submail", [SendResult.retry("refused")] * 10, 0.1)
    assert providers_health_check(PROVIDERS) == []


def test_slow_calls_take_a_provider_out(route, settings):
    for _ in range(3):
        record_call("aliyun", [SendResult.sent("x")] * 10, 9.0)
    assert providers_health_check(PROVIDERS) == ["aliyun: out"]
    assert "took 9.0 s on average" in ProviderSwitch.objects.get().reason


def test_a_provider_out_of_rotation_still_sends_what_no_other_can(route, alice, settings):
    settings.HEALTH_PROBE_SHARE = 0.0
    ProviderHealth.objects.create(provider="submail", state="out")
    result = bulk_send(actor=alice, channel="sms", recipients=["+8613900000001"], content="free text")
    dispatch_pending(batch_id=result.batch.id)
    assert CommunicationLog.objects.get(batch_id=result.batch.id).provider == "submail"


def test_too_few_messages_decide_nothing(route):
    record_call("submail", [SendResult.retry("refused")] * 5, 0.1)
    assert providers_health_check(PROVIDERS) == []


class _Later:
    """The health check's clock, `minutes` ahead of the real one (the logs keep their times)."""

    monotonic = staticmethod(time.monotonic)

    def __init__(self, minutes):
        self.offset = minutes * 60

    def time(self):
        return time.time() + self.offset


def _check_later(monkeypatch, minutes):
    monkeypatch.setattr(health, "time", _Later(minutes))
    return providers_health_check(PROVIDERS)


@pytest.fixture
def polled(db):
    """The status sync's last call read SUBMAIL's reports up to now (less than a full page)."""

    def record(received=10, window_end=None):
        return SyncRun.objects.create(
            provider="submail", account="10001", received=received,
            window_end=window_end or timezone.now() + timedelta(minutes=30),
        )  # fmt: skip

    record()
    return record


def _deliver(logs, n):
    ids = [log.id for log in logs[:n]]
    CommunicationLog.objects.filter(id__in=ids).update(status="delivered", delivered_at=timezone.now())


def test_a_provider_that_accepts_but_never_reports_delivery_leaves_the_rotation(
    route, alice, monkeypatch, polled
):
    logs = _send(alice, 30)
    assert {log.provider for log in logs} == {"submail"}
    assert _check_later(monkeypatch, 2) == []  # too early to tell
    _deliver(logs, 20)  # 10 of 30 (33 %) still without a report
    assert _check_later(monkeypatch, 6) == ["submail: out"]
    health_row = ProviderHealth.objects.get(provider="submail")
    assert health_row.cause == "delivery"
    assert health_row.reason == "33% of 30 messages it accepted have no delivery report after 5 min"


def test_delivered_messages_keep_a_provider_in(route, alice, monkeypatch, polled):
    logs = _send(alice, 30)
    _deliver(logs, 25)  # 5 of 30 (17 %) without a report: under HEALTH_UNDELIVERED_SHARE
    assert _check_later(monkeypatch, 6) == []
    assert _check_later(monkeypatch, 16) == []  # and out of the window: nothing to judge


def test_silence_from_a_provider_that_reports_nothing_means_nothing(route, alice, monkeypatch, settings):
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "aliyun"}
    settings.FAILOVER_PROVIDERS = {}
    settings.ALIYUN_RECEIPT_TOKEN = ""  # no receipts configured, and Aliyun is not polled
    logs = _send(alice, 30)
    assert {log.provider for log in logs} == {"aliyun"}
    assert _check_later(monkeypatch, 6) == []
    settings.ALIYUN_RECEIPT_TOKEN = "receipt-path-token"
    assert _check_later(monkeypatch, 6) == ["aliyun: out"]


def test_out_for_undelivered_messages_it_returns_only_on_delivered_probes(
    route, alice, monkeypatch, settings, polled
):
    settings.HEALTH_PROBE_SHARE = 1.0  # every message probes
    ProviderHealth.objects.create(provider="submail", state="out", cause="delivery")
    ProviderHealth.objects.filter(provider="submail").update(changed_at=timezone.now() - timedelta(minutes=2))
    probes = _send(alice, 25)
    assert {log.provider for log in probes} == {"submail"}
    assert _check_later(monkeypatch, 0) == []  # accepted, but not yet old enough to judge
    assert _check_later(monkeypatch, 6) == []  # old enough, never delivered: stays out
    _deliver(probes, 25)
    assert _check_later(monkeypatch, 6) == ["submail: in"]
    assert (
        ProviderSwitch.objects.get().reason == "100% of 25 probes it accepted were reported delivered in time"
    )

    # Back in, the silence judged before it went back is not judged again.
    _deliver(probes, 0)
    ProviderHealth.objects.filter(provider="submail").update(changed_at=timezone.now())
    CommunicationLog.objects.filter(id__in=[log.id for log in probes]).update(status="sent")
    assert _check_later(monkeypatch, 6) == []


def test_silence_is_not_judged_while_our_polling_is_behind(route, alice, monkeypatch, polled):
    _send(alice, 30)
    polled(received=500)  # the last sms/log call read a full page: more records wait to be read
    assert _check_later(monkeypatch, 6) == []
    polled(received=10, window_end=timezone.now() - timedelta(hours=1))  # caught up, but not that far
    assert _check_later(monkeypatch, 6) == []
    SyncRun.objects.all().delete()  # not polling at all
    assert _check_later(monkeypatch, 6) == []
    polled()
    assert _check_later(monkeypatch, 6) == ["submail: out"]


def test_out_for_undelivered_messages_it_returns_on_its_calls_when_reports_cannot_be_read(
    route, alice, settings, polled
):
    settings.HEALTH_PROBE_SHARE = 1.0
    ProviderHealth.objects.create(provider="submail", state="out", cause="delivery")
    ProviderHealth.objects.filter(provider="submail").update(changed_at="2020-01-01T00:00:00Z")
    polled(received=500)  # behind: delivered probes could not be seen
    _send(alice, 25)
    assert providers_health_check(PROVIDERS) == ["submail: in"]


def test_out_for_failing_calls_it_returns_on_accepted_probes_without_waiting_for_reports(
    route, alice, settings
):
    settings.HEALTH_PROBE_SHARE = 1.0
    ProviderHealth.objects.create(provider="submail", state="out", cause="calls")
    ProviderHealth.objects.filter(provider="submail").update(changed_at="2020-01-01T00:00:00Z")
    _send(alice, 25)
    assert providers_health_check(PROVIDERS) == ["submail: in"]


def test_platform_staff_see_each_providers_health_on_the_console_dashboard(route, alice, root, ada, client):
    _send(alice, 30)
    ProviderHealth.objects.create(provider="aliyun", state="out", reason="its calls took 9.0 s on average")
    client.force_login(root)
    html = client.get("/admin/").content.decode()
    assert 'id="provider-health"' in html
    submail_row = html.split('<tr data-provider="submail">')[1].split("</tr>")[0]
    assert "in rotation" in submail_row and '<td class="num messages">30</td>' in submail_row
    aliyun_row = html.split('<tr data-provider="aliyun">')[1].split("</tr>")[0]
    assert "out of rotation" in aliyun_row and "its calls took 9.0 s on average" in aliyun_row
    client.force_login(ada)  # a tenant admin: the gateways serve every tenant, not theirs to see
    assert 'id="provider-health"' not in client.get("/admin/").content.decode()
