"""Routing over SUBMAIL then Aliyun: a message moves on only when SUBMAIL provably did not
take it, so no number is ever submitted to both."""

from datetime import timedelta

import pytest
from django.utils import timezone

from authms.errors import ValidationError
from communication.models import CommunicationLog
from communication.services import bulk_send, dispatch_pending
from templates.models import Template


@pytest.fixture
def route(settings, fake_submail, fake_aliyun):
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "submail"}
    settings.FAILOVER_PROVIDERS = {"sms": ["aliyun"]}
    return fake_submail, fake_aliyun


@pytest.fixture
def otp(tenant_a):
    return Template.objects.create(
        tenant=tenant_a, code="otp", channel="sms", name="OTP", body="Your code is {{code}}",
        provider_codes={"submail": "H5OSN4", "aliyun": "SMS_100"},
    )  # fmt: skip


def _send(alice, recipients, **kwargs):
    result = bulk_send(actor=alice, channel="sms", recipients=recipients, **kwargs)
    dispatch_pending(batch_id=result.batch.id)
    return list(CommunicationLog.objects.filter(batch_id=result.batch.id).order_by("id"))


def _numbers(n):
    return [f"+861390000{i:04d}" for i in range(n)]


def test_submail_refusing_connections_sends_everything_through_aliyun(route, otp, alice):
    submail, aliyun = route
    submail.stop()  # connection refused
    logs = _send(alice, _numbers(5), template="otp", variables={"code": "4321"})
    assert {(log.status, log.provider) for log in logs} == {("sent", "aliyun")}
    assert len(aliyun.messages) == 5 and aliyun.messages[0].content.endswith(
        "您的验证码为4321，5分钟内有效。"
    )
    attempt = logs[0].delivery_attempts.get()
    assert (attempt.provider, attempt.next_provider) == ("submail", "aliyun")
    assert "could not be reached" in attempt.error


def test_an_account_fault_at_submail_moves_on_but_a_refused_number_does_not(route, otp, alice):
    submail, aliyun = route
    submail.faults.error_numbers["13900000001"] = 252  # SUBMAIL: incorrect number, that message's fault
    logs = _send(alice, _numbers(2), template="otp", variables={"code": "1"})
    assert [(log.status, log.provider) for log in logs] == [("sent", "submail"), ("failed", "submail")]
    assert aliyun.messages == []

    submail.faults.error_numbers.clear()
    submail.apps["10001"] = "another-appkey"  # our key is wrong now: error 108, our configuration
    logs = _send(alice, _numbers(3)[2:], template="otp", variables={"code": "1"})
    assert [(log.status, log.provider) for log in logs] == [("sent", "aliyun")]


def test_an_unknown_outcome_is_reconciled_at_submail_never_tried_at_aliyun(route, otp, alice, settings):
    submail, aliyun = route
    settings.SUBMAIL_READ_TIMEOUT = 0.2
    submail.faults.slow, submail.faults.slow_seconds = 1.0, 0.5  # accepted, answer too late
    (log,) = _send(alice, _numbers(1), template="otp", variables={"code": "1"})
    assert (log.status, log.status_detail, log.provider) == ("pending", "reconciling", "submail")
    assert aliyun.requests == [] and len(submail.messages) == 1


def test_free_text_cannot_fail_over_to_a_templates_only_provider(route, alice):
    submail, aliyun = route
    submail.stop()
    (log,) = _send(alice, _numbers(1), content="Hello")
    assert (log.status, log.status_detail, log.provider) == ("pending", "retrying", "submail")
    assert log.next_attempt_at > timezone.now() and aliyun.requests == []


def test_a_scheduled_retry_starts_again_from_the_primary(route, otp, alice):
    submail, aliyun = route
    submail.stop()
    aliyun.faults.http_503 = 1.0
    (log,) = _send(alice, _numbers(1), template="otp", variables={"code": "1"})
    assert (log.status, log.status_detail, log.provider) == ("pending", "retrying", "submail")
    assert [(a.provider, a.next_provider) for a in log.delivery_attempts.all()] == [
        ("submail", "aliyun"),
        ("aliyun", ""),
    ]


def test_a_route_of_templates_only_providers_refuses_free_text_at_the_request(settings, fake_aliyun, alice):
    settings.CHANNEL_PROVIDERS, settings.FAILOVER_PROVIDERS = (
        {**settings.CHANNEL_PROVIDERS, "sms": "aliyun"},
        {},
    )
    with pytest.raises(ValidationError) as error:
        bulk_send(actor=alice, channel="sms", recipients=_numbers(1), content="Hello")
    assert "templates only" in str(error.value.errors["content"][0])


def _age(**fields):
    CommunicationLog.objects.update(**fields)


def test_an_unknown_outcome_at_aliyun_is_settled_by_querysenddetails(route, otp, alice, settings):
    from communication.services.reconcile import reconcile_by_lookup

    submail, aliyun = route
    submail.stop()
    settings.ALIYUN_READ_TIMEOUT = 0.2
    aliyun.faults.slow, aliyun.faults.slow_seconds = 1.0, 0.5  # stored, answer too late
    (log,) = _send(alice, _numbers(1), template="otp", variables={"code": "1"})
    assert (log.status, log.status_detail, log.provider) == ("pending", "reconciling", "aliyun")
    aliyun.faults.slow = 0.0
    assert reconcile_by_lookup() == 0  # asked about at most every 20 s
    _age(updated_at=timezone.now() - timedelta(seconds=30))
    assert reconcile_by_lookup() == 1
    log.refresh_from_db()
    assert (log.status, log.provider_message_id) == ("sent", f"{log.provider_ref}/13900000000")
    assert len(aliyun.messages) == 1 and aliyun.calls("QuerySendDetails") == 1


def test_a_message_aliyun_never_stored_is_queued_again_after_the_settle_time(route, otp, alice, settings):
    from communication.services.reconcile import reconcile_by_lookup

    submail, aliyun = route
    submail.stop()
    settings.ALIYUN_READ_TIMEOUT = 0.2
    aliyun.faults.reset, aliyun.faults.after_processing = 1.0, False  # dropped before storing
    (log,) = _send(alice, _numbers(1), template="otp", variables={"code": "1"})
    aliyun.faults.reset = 0.0
    _age(updated_at=timezone.now() - timedelta(seconds=30))
    assert reconcile_by_lookup() == 0  # not listed, but only just handed over: keep asking
    log.refresh_from_db()
    assert log.status_detail == "reconciling" and log.updated_at > timezone.now() - timedelta(seconds=5)

    _age(updated_at=timezone.now() - timedelta(seconds=30), claimed_at=timezone.now() - timedelta(minutes=11))
    assert reconcile_by_lookup() == 1
    log.refresh_from_db()
    assert (log.status, log.status_detail, log.claimed_at) == ("pending", "retrying", None)
    dispatch_pending(batch_id=log.batch_id)
    log.refresh_from_db()
    assert log.status == "sent" and len(aliyun.messages) == 1


def test_a_tenant_with_its_own_order_starts_at_aliyun_and_fails_over_to_submail(route, otp, alice, tenant_a):
    submail, aliyun = route
    tenant_a.sms_providers = "aliyun,submail"
    tenant_a.save()
    (log,) = _send(alice, _numbers(1), template="otp", variables={"code": "1"})
    assert (log.provider, log.status) == ("aliyun", "sent") and submail.messages == {}

    aliyun.account_code = "isv.AMOUNT_NOT_ENOUGH"  # our balance there is gone: move on
    from communication.services.routing import forget_tenant_orders

    forget_tenant_orders()
    (log,) = _send(alice, _numbers(2)[1:], template="otp", variables={"code": "1"})
    assert (log.provider, log.status) == ("submail", "sent")
    assert [(a.provider, a.next_provider) for a in log.delivery_attempts.all()] == [("aliyun", "submail")]


def test_a_tenant_order_names_only_providers_the_deployment_routes_to(client, root, route, tenant_a):
    from django.urls import reverse

    client.force_login(root)
    url = reverse("admin:authms_tenant_change", args=[tenant_a.id])
    form = {"name": tenant_a.name, "slug": tenant_a.slug, "is_active": "on"}
    page = client.post(url, {**form, "sms_providers": "aliyun, smtp"})
    assert page.status_code == 200 and "Not on this deployment" in page.content.decode()
    assert client.post(url, {**form, "sms_providers": "aliyun, submail"}).status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.sms_providers == "aliyun,submail"


def test_messages_held_at_submail_do_not_crowd_aliyun_lookups_out(route, otp, alice, settings):
    """SUBMAIL's held messages are settled from sms/log pages, never looked up one by one:
    however many there are, Aliyun's held messages are still asked about."""
    from communication.services.reconcile import reconcile_by_lookup
    from tests.factories import LogFactory

    submail, aliyun = route
    submail.stop()
    settings.ALIYUN_READ_TIMEOUT = 0.2
    aliyun.faults.slow, aliyun.faults.slow_seconds = 1.0, 0.5
    (log,) = _send(alice, _numbers(1), template="otp", variables={"code": "1"})
    aliyun.faults.slow = 0.0
    LogFactory(user=alice, provider="submail", claimed_at=timezone.now(), status_detail="reconciling")
    _age(updated_at=timezone.now() - timedelta(seconds=30))
    CommunicationLog.objects.filter(provider="submail").update(updated_at=timezone.now() - timedelta(hours=1))
    assert reconcile_by_lookup(limit=1) == 1
    log.refresh_from_db()
    assert log.status == "sent"
