"""FCM HTTP v1 against the fake FCM and Google token endpoint: the service-account token is
minted by google-auth and verified by the fake (RS256, issuer, audience, scope), cached and
refreshed once for concurrent sends; FCM's error codes decide retry, failure and whether the
device is retired; and a push bulk through it ends with every log terminal and none sent twice."""

import threading

import pytest

from communication.models import CommunicationLog, DeliveryAttempt, Device
from communication.services.dispatch import dispatch_pending
from providers.base import Outcome, OutgoingMessage
from providers.registry import provider_by_name, reset_cache
from tests.factories import UserFactory


def message(n: int, token: str | None = None, **fields) -> OutgoingMessage:
    target = {"token": token or f"token-{n}"} if token != "" else {}
    return OutgoingMessage(
        log_id=f"log_{n}", tenant_id="tnt_1", channel="push", recipient=f"dev_{n}", subject="Hi", body="Hello",
        target=target, **fields,
    )  # fmt: skip


def test_a_message_reaches_fcm_with_its_title_data_link_and_ttl(fake_fcm, settings):
    settings.PUSH_TTL_SECONDS = 3600
    fcm = provider_by_name("fcm")
    [result] = fcm.send_many([message(1, data={"order": "42"}, link="myapp://orders/42")])
    assert result.outcome == Outcome.SENT and result.provider_message_id == "projects/authms-test/messages/1"
    [sent] = fake_fcm.messages
    assert sent["token"] == "token-1" and sent["notification"] == {"title": "Hi", "body": "Hello"}
    assert sent["data"] == {"order": "42", "log_id": "log_1", "link": "myapp://orders/42"}
    assert sent["android"] == {"priority": "HIGH", "ttl": "3600s"}
    assert fake_fcm.tokens_issued == ["fake-1"]  # the fake verified google-auth's RS256 assertion


def test_one_token_serves_many_concurrent_sends_and_calls(fake_fcm):
    fcm = provider_by_name("fcm")
    # Eight calls at once on a fresh provider: one token fetch between them (the lock).
    threads = [threading.Thread(target=fcm.send_many, args=([message(1000 + n)],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = fcm.send_many([message(n) for n in range(100)])
    assert {r.outcome for r in results} == {Outcome.SENT} and len(fake_fcm.messages) == 108
    assert fake_fcm.tokens_issued == ["fake-1"]


def test_a_refused_access_token_is_replaced_and_the_message_retried(fake_fcm):
    fcm = provider_by_name("fcm")
    fcm.send_many([message(1)])
    fake_fcm.revoked.add("fake-1")
    [result] = fcm.send_many([message(2)])
    assert result.outcome == Outcome.RETRY and result.retry_after == 0
    [again] = fcm.send_many([message(2)])
    assert again.outcome == Outcome.SENT and fake_fcm.tokens_issued == ["fake-1", "fake-2"]


@pytest.mark.parametrize(
    ("code", "outcome", "gone", "fault"),
    [
        ("UNREGISTERED", Outcome.FAILED, True, False),
        ("INVALID_ARGUMENT", Outcome.FAILED, True, False),
        ("SENDER_ID_MISMATCH", Outcome.FAILED, True, False),
        ("THIRD_PARTY_AUTH_ERROR", Outcome.FAILED, False, True),
        ("QUOTA_EXCEEDED", Outcome.RETRY, False, False),
        ("UNAVAILABLE", Outcome.RETRY, False, False),
        ("INTERNAL", Outcome.UNKNOWN, False, False),
    ],
)
def test_fcm_error_codes(fake_fcm, code, outcome, gone, fault):
    fake_fcm.errors["token-1"] = code
    [result] = provider_by_name("fcm").send_many([message(1)])
    assert (result.outcome, result.target_gone, result.provider_fault) == (outcome, gone, fault)
    assert not fake_fcm.messages


def test_retry_after_is_honoured_and_quota_waits_at_least_a_minute(fake_fcm):
    fake_fcm.errors.update({"token-1": "UNAVAILABLE", "token-2": "QUOTA_EXCEEDED"})
    fcm = provider_by_name("fcm")
    fake_fcm.retry_after = "120"
    assert [r.retry_after for r in fcm.send_many([message(1), message(2)])] == [120, 120]
    fake_fcm.retry_after = None
    assert [r.retry_after for r in fcm.send_many([message(1), message(2)])] == [None, 60]


def test_a_payload_bug_fails_the_message_and_keeps_the_device(fake_fcm):
    [result] = provider_by_name("fcm").send_many([message(1, data={"n": 1})])  # not a string
    assert result.outcome == Outcome.FAILED and not result.target_gone and "message.data" in result.error


def test_no_answer_in_time_is_unknown_and_no_connection_is_retry(fake_fcm, settings):
    fcm = provider_by_name("fcm")
    fake_fcm.delay = 1.5
    [late] = fcm.send_many([message(1)])
    assert late.outcome == Outcome.UNKNOWN
    fake_fcm.delay = 0
    fake_fcm.stop()
    [down] = fcm.send_many([message(2)])
    assert down.outcome == Outcome.RETRY  # the token is cached; the send never connected


def test_a_deleted_device_fails_without_a_call(fake_fcm):
    [result] = provider_by_name("fcm").send_many([message(1, token="")])
    assert result.outcome == Outcome.FAILED and not fake_fcm.messages


@pytest.mark.django_db
def test_a_push_bulk_through_fcm_retires_gone_devices_and_sends_each_once(
    fake_fcm, client_for, ada, tenant_a, django_capture_on_commit_callbacks
):
    users = [UserFactory(tenant=tenant_a) for _ in range(50)]
    devices = [
        Device.objects.create(
            tenant=tenant_a, user=user, platform="android", provider="fcm", token=f"tok-{n}-" + "x" * 20
        )
        for n, user in enumerate(users)
    ]
    gone = {devices[n].token for n in (3, 17, 41)}
    fake_fcm.errors.update(dict.fromkeys(gone, "UNREGISTERED"))
    fake_fcm.errors[devices[5].token] = "UNAVAILABLE"
    fake_fcm.faults.http_500 = 0.0
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(ada).post(
            "/api/v1/communication/bulk",
            {
                "channel": "push",
                "subject": "Sale",
                "content": "Today only",
                "recipients": [u.id for u in users],
            },
            format="json",
        )
    assert response.status_code == 200
    statuses = dict(CommunicationLog.objects.values_list("recipient", "status"))
    assert list(statuses.values()).count("sent") == 46 and list(statuses.values()).count("failed") == 3
    assert statuses[devices[5].id] == "pending"  # UNAVAILABLE: waits for its retry
    assert Device.objects.get(id=devices[5].id).failure_count == 1
    assert DeliveryAttempt.objects.filter(log__recipient=devices[5].id).count() == 1
    assert set(Device.objects.filter(active=False).values_list("token", flat=True)) == gone
    assert "UNREGISTERED" in Device.objects.filter(active=False).first().last_error
    fake_fcm.errors.pop(devices[5].token)
    CommunicationLog.objects.filter(status="pending").update(next_attempt_at=None)
    dispatch_pending(batch_id=None)
    sent_tokens = fake_fcm.delivered_tokens()
    assert len(sent_tokens) == len(set(sent_tokens)) == 47  # each device once
    assert not CommunicationLog.objects.filter(status="pending").exists()


def test_calls_from_the_dispatch_loops_never_wait_inside_the_connection_pool(fake_fcm, settings):
    """Four loops share the provider, each call sending concurrently: with more requests than
    pooled connections, httpcore 1.0.9 could close a connection assigned to a waiting request
    (encode/httpcore#1110), and those pushes came back "outcome unknown" without having left."""
    settings.FCM_CONCURRENCY = 1
    outcomes = []
    for _trial in range(5):
        reset_cache()
        fcm = provider_by_name("fcm")

        def loop(k, fcm=fcm):
            outcomes.extend(r.outcome for r in fcm.send_many([message(1000 * k + n) for n in range(25)]))

        threads = [threading.Thread(target=loop, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes.count(Outcome.SENT) == len(outcomes) == 500
