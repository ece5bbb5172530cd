"""Providers leave the rotation when they stop taking messages, are probed, and come back."""

import pytest
from django.core.cache import cache

from communication.models import CommunicationLog, ProviderHealth, ProviderSwitch
from communication.services import bulk_send, dispatch_pending
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
