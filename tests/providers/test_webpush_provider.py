"""Web Push against the fake push service, which decrypts every payload with the browser's keys
(RFC 8291) and verifies the VAPID JWT (RFC 8292): a push reaches it only if both are right."""

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from communication.models import CommunicationLog, Device
from providers.base import Outcome, OutgoingMessage
from providers.registry import provider_by_name
from tests.fakes.webpush_server import unb64url

# RFC 8291 §5 / Appendix A, the specification's own example (not our output).
RFC8291 = {
    "ua_private": "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
    "auth": "BTBZMqHH6r4Tts7J_aSIgg",
    "body": "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    "plaintext": b"When I grow up, I want to be a watermelon",
}


def test_the_fakes_decryption_is_pinned_to_the_rfc_8291_example():
    private = ec.derive_private_key(int.from_bytes(unb64url(RFC8291["ua_private"]), "big"), ec.SECP256R1())
    plaintext = http_ece.decrypt(
        unb64url(RFC8291["body"]),
        private_key=private,
        auth_secret=unb64url(RFC8291["auth"]),
        version="aes128gcm",
    )
    assert plaintext == RFC8291["plaintext"]


def message(subscription: dict, n: int = 1, **fields) -> OutgoingMessage:
    target = {"token": subscription["endpoint"], **subscription["keys"]}
    return OutgoingMessage(log_id=f"log_{n}", tenant_id="tnt", channel="push", recipient=f"dev_{n}",
                           subject="Hi", body="Hello 你好", target=target, **fields)  # fmt: skip


def test_a_push_arrives_encrypted_for_the_browser_and_signed_for_our_key(fake_webpush, settings, vapid_keys):
    settings.PUSH_TTL_SECONDS = 600
    subscription = fake_webpush.subscribe(vapid_keys[1])
    [result] = provider_by_name("webpush").send_many(
        [message(subscription, data={"order": "42"}, link="https://shop.example/o/42")]
    )
    assert result.outcome == Outcome.SENT and result.provider_message_id.startswith(f"{fake_webpush.url}/m/")
    [received] = fake_webpush.received
    assert received.payload == {"title": "Hi", "body": "Hello 你好", "data": {"order": "42"},
                                "link": "https://shop.example/o/42", "log_id": "log_1"}  # fmt: skip
    assert (received.ttl, received.urgency) == (600, "high") and not fake_webpush.refused


def test_a_subscription_made_for_another_key_is_refused_as_our_configuration(fake_webpush, vapid_keys):
    other = fake_webpush.subscribe(
        "BOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyO"
    )
    [result] = provider_by_name("webpush").send_many([message(other)])
    assert (result.outcome, result.provider_fault, result.target_gone) == (Outcome.FAILED, True, False)
    assert fake_webpush.refused == [(403, "not the key this subscription was made with")]


@pytest.mark.parametrize(
    ("status", "outcome", "gone"),
    [(404, Outcome.FAILED, True), (410, Outcome.FAILED, True), (413, Outcome.FAILED, False),
     (429, Outcome.RETRY, False), (503, Outcome.RETRY, False)],
)  # fmt: skip
def test_push_service_answers(fake_webpush, vapid_keys, status, outcome, gone):
    subscription = fake_webpush.subscribe(vapid_keys[1])
    fake_webpush.errors["s1"] = status
    fake_webpush.retry_after = "90"
    [result] = provider_by_name("webpush").send_many([message(subscription)])
    assert (result.outcome, result.target_gone) == (outcome, gone)
    assert result.retry_after == (90 if status in (429, 503) else None)


def test_no_answer_after_sending_is_unknown_and_a_refused_connection_retry(fake_webpush, vapid_keys):
    subscription = fake_webpush.subscribe(vapid_keys[1])
    fake_webpush.faults.slow, fake_webpush.faults.slow_seconds, fake_webpush.faults.after_processing = (
        1.0,
        1.5,
        False,
    )
    [late] = provider_by_name("webpush").send_many([message(subscription)])
    assert late.outcome == Outcome.UNKNOWN
    fake_webpush.faults.slow = 0.0
    fake_webpush.stop()
    [down] = provider_by_name("webpush").send_many([message(subscription, 2)])
    assert down.outcome == Outcome.RETRY
    # The endpoint is the subscription's secret: never in an error a log keeps.
    assert "/push/" not in late.error and "/push/" not in down.error


def test_an_endpoint_resolving_inside_the_network_is_refused_at_send_time(fake_webpush, vapid_keys, settings):
    settings.WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = False
    subscription = fake_webpush.subscribe(vapid_keys[1])
    subscription["endpoint"] = subscription["endpoint"].replace("127.0.0.1", "localhost")
    [result] = provider_by_name("webpush").send_many([message(subscription)])
    assert result.outcome == Outcome.FAILED and result.target_gone and "private address" in result.error
    assert not fake_webpush.received and not fake_webpush.refused


@pytest.mark.django_db
def test_a_browser_registers_and_a_push_bulk_reaches_it_once(
    fake_webpush, vapid_keys, client_for, alice, ada, django_capture_on_commit_callbacks
):
    subscriptions = [fake_webpush.subscribe(vapid_keys[1]) for _ in range(20)]
    client = client_for(alice)
    for subscription in subscriptions:
        assert (
            client.post(
                "/api/v1/devices", {"platform": "web", "subscription": subscription}, format="json"
            ).status_code
            == 201
        )
    fake_webpush.errors["s3"] = 410  # this browser unsubscribed
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(ada).post(
            "/api/v1/communication/bulk",
            {"channel": "push", "subject": "Hello", "content": "From the web", "recipients": [alice.id]},
            format="json",
        )
    assert response.status_code == 200
    statuses = list(CommunicationLog.objects.values_list("status", flat=True))
    assert statuses.count("sent") == 19 and statuses.count("failed") == 1
    assert sorted(r.subscription_id for r in fake_webpush.received) == sorted(
        f"s{n}" for n in range(1, 21) if n != 3
    )
    gone = Device.objects.get(active=False)
    assert gone.token.endswith("/push/s3") and "gone" in gone.last_error
