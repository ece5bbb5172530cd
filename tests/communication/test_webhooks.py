"""Tenant webhooks: Standard Webhooks signatures (pinned to the spec's vector, verified by the
`standardwebhooks` library in the receiver fake), endpoint management with the secret shown
once, SSRF refusals at save and at delivery, the retry schedule under a controlled clock,
disabling, rotation overlap and redelivery."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from communication import webhook_transport
from communication.models import CommunicationLog, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from communication.services.events import events_sequence
from communication.services.webhooks import deliveries_send, endpoint_create, retry_delays
from communication.webhook_signing import decrypt, signature, signature_header
from notifications.models import Notification
from tests.factories import LogFactory
from tests.fakes.webhook_receiver import WebhookReceiver

URL = "/api/v1/webhooks/endpoints"
PUBLIC = "93.184.216.34"


# --- Signing ----------------------------------------------------------------------------------


def test_the_signer_matches_the_specifications_vector():
    assert (
        signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                  b'{"test": 2432232314}')
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )  # fmt: skip


def test_an_independent_verifier_accepts_our_signatures_and_refuses_a_changed_byte():
    old, new = (
        "whsec_" + base64.b64encode(b"o" * 24).decode(),
        "whsec_" + base64.b64encode(b"n" * 24).decode(),
    )
    body, stamp = b'{"type":"message.sent"}', int(time.time())
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(stamp),
               "webhook-signature": signature_header([new, old], "evt_1", stamp, body)}  # fmt: skip
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old, new):  # during a rotation either secret verifies
        Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.replace(b"sent", b"sEnt"), headers)


# --- Endpoints --------------------------------------------------------------------------------


@pytest.fixture
def resolver(monkeypatch):
    """DNS as the test says (CI has none): host → addresses; unknown names → a public address."""
    answers = {}
    monkeypatch.setattr(webhook_transport, "resolve", lambda host, port: answers.get(host, [PUBLIC]))
    return answers


def test_a_tenant_admin_adds_an_endpoint_and_sees_the_secret_once(client_for, ada, resolver):
    answer = client_for(ada).post(URL, {"url": "https://hooks.example.com/in", "event_types": ["message.failed"]},
                                  format="json")  # fmt: skip
    assert answer.status_code == 201, answer.json()
    data = answer.json()["data"]
    assert data["secret"].startswith("whsec_") and data["event_types"] == ["message.failed"]
    stored = WebhookEndpoint.objects.get()
    assert (
        data["secret"] not in stored.secret and decrypt(stored.secret) == data["secret"]
    )  # encrypted at rest
    listed = client_for(ada).get(URL).json()["items"]
    assert [item["id"] for item in listed] == [data["id"]] and "secret" not in listed[0]
    assert "secret" not in client_for(ada).get(f"{URL}/{data['id']}").json()["data"]


@pytest.mark.parametrize(
    ("url", "resolves_to"),
    [
        ("https://127.0.0.1/in", None),
        ("https://169.254.169.254/latest/meta-data", None),
        ("https://[::1]/in", None),
        ("https://10.0.0.1/in", None),
        ("https://[::ffff:127.0.0.1]/in", None),
        ("https://100.100.100.200/in", None),  # Alibaba Cloud's metadata (CGNAT)
        ("https://192.0.0.192/in", None),  # Oracle Cloud's metadata
        ("https://[64:ff9b::a9fe:a9fe]/in", None),  # NAT64 of 169.254.169.254
        ("https://[2002:a9fe:a9fe::]/in", None),  # 6to4 of it
        ("https://224.0.0.1/in", None),
        ("https://intranet.example.com/in", ["10.1.2.3"]),
        ("https://mixed.example.com/in", [PUBLIC, "192.168.1.9"]),  # every address must be public
        ("https://localhost/in", None),
        ("http://hooks.example.com/in", None),  # https only in production
        ("https://user:pw@hooks.example.com/in", None),
        ("ftp://hooks.example.com/in", None),
        ("not a url", None),
    ],
)
def test_unsafe_urls_are_refused_at_save(client_for, ada, resolver, url, resolves_to):
    if resolves_to:
        resolver[url.split("/")[2]] = resolves_to
    answer = client_for(ada).post(URL, {"url": url}, format="json")
    assert answer.status_code == 400 and "url" in answer.json()["errors"], answer.json()
    assert not WebhookEndpoint.objects.exists()


def test_only_tenant_admins_manage_their_own_endpoints(client_for, alice, ada, bob, resolver):
    assert client_for(alice).get(URL).status_code == 403
    assert client_for(alice).post(URL, {"url": "https://hooks.example.com"}, format="json").status_code == 403
    endpoint, _secret = endpoint_create(actor=ada, url="https://hooks.example.com/in")
    from tests.factories import UserFactory

    bobs_admin = UserFactory(username="bea", tenant=bob.tenant, is_staff=True)
    assert client_for(bobs_admin).get(f"{URL}/{endpoint.id}").status_code == 404
    assert client_for(bobs_admin).delete(f"{URL}/{endpoint.id}").status_code == 404
    assert client_for(bobs_admin).get(URL).json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [{"event_types": ["message.exploded"]}, {"event_types": "message.sent"}, {"event_types": ["provider.switched"]},
     {"url": ""}, {"url": 5}],
)  # fmt: skip
def test_bad_endpoint_fields_are_400(client_for, ada, resolver, body):
    answer = client_for(ada).post(URL, {"url": "https://hooks.example.com/in", **body}, format="json")
    assert answer.status_code == 400, answer.json()


# --- Delivery ---------------------------------------------------------------------------------


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    fake = WebhookReceiver().start()
    yield fake
    fake.stop()


@pytest.fixture
def endpoint(ada, receiver):
    endpoint, secret = endpoint_create(actor=ada, url=f"{receiver.url}/hooks")
    receiver.secrets.append(secret)
    return endpoint


def sent_event(user):
    log = LogFactory(user=user, status="pending")
    CommunicationLog.objects.filter(id=log.id).update(status="sent", sent_at=timezone.now())
    events_sequence()
    return Event.objects.get(log_id=log.id)


def test_events_reach_the_endpoint_signed_and_as_the_feed_lists_them(client_for, ada, endpoint, receiver):
    event = sent_event(ada)
    assert deliveries_send() == 1
    (request,) = receiver.received
    assert request.verified_by == [0] and request.webhook_id == event.id
    assert request.body == event.body.encode()
    assert json.loads(request.body) == client_for(ada).get(f"/api/v1/events/{event.id}").json()["data"]
    assert WebhookDelivery.objects.get().state == "delivered"
    assert WebhookAttempt.objects.get().status_code == 200


def test_endpoints_get_only_their_types(ada, receiver, settings):
    endpoint, secret = endpoint_create(actor=ada, url=f"{receiver.url}/hooks", event_types=["message.failed"])
    sent_event(ada)
    assert not WebhookDelivery.objects.exists()


@pytest.fixture
def clock(monkeypatch):
    """timezone.now() under control, starting at the real time (receivers check timestamps)."""
    current = {"now": datetime.now(UTC)}
    monkeypatch.setattr(timezone, "now", lambda: current["now"])
    return current


def test_failures_are_retried_on_the_schedule_with_the_same_id_and_body(ada, endpoint, receiver, clock):
    receiver.script = [500, 503, 200]
    event = sent_event(ada)
    start = clock["now"]
    deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 1 and timedelta(seconds=4) <= delivery.next_attempt_at - start <= timedelta(
        seconds=6
    )
    assert deliveries_send() == 0  # not due yet
    clock["now"] = delivery.next_attempt_at
    deliveries_send()
    delivery.refresh_from_db()
    step = delivery.next_attempt_at - clock["now"]
    assert timedelta(minutes=4) <= step <= timedelta(minutes=6)  # 5 min ±20 %
    clock["now"] = delivery.next_attempt_at
    deliveries_send()
    delivery.refresh_from_db()
    assert delivery.state == "delivered" and delivery.attempts == 3
    assert {request.webhook_id for request in receiver.received} == {event.id}
    assert {request.body for request in receiver.received} == {event.body.encode()}
    assert len({request.timestamp for request in receiver.received}) == 3
    assert [a.status_code for a in WebhookAttempt.objects.order_by("at")] == [500, 503, 200]


def test_after_eight_attempts_the_delivery_is_exhausted(ada, endpoint, receiver, clock):
    receiver.default = 500
    sent_event(ada)
    for _ in range(20):
        deliveries_send()
        delivery = WebhookDelivery.objects.get()
        if delivery.next_attempt_at is None:
            break
        clock["now"] = delivery.next_attempt_at
    assert delivery.state == "exhausted" and delivery.attempts == len(retry_delays()) + 1 == 8
    assert len(receiver.received) == 8


def test_410_gone_disables_the_endpoint_and_tells_the_admins(
    ada, endpoint, receiver, django_capture_on_commit_callbacks
):
    receiver.script = [410]
    sent_event(ada)
    sent_event(ada)
    with django_capture_on_commit_callbacks(execute=True):
        deliveries_send()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) <= {"cancelled", "exhausted", "pending",
                                                                          "delivered"}  # fmt: skip
    assert not WebhookDelivery.objects.filter(state="pending").exists()
    assert Notification.objects.filter(user=ada, event_type="communication.webhook.disabled").exists()


def test_five_days_of_failures_disable_the_endpoint(ada, endpoint, receiver, clock):
    receiver.default = 500
    sent_event(ada)
    deliveries_send()
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since == clock["now"]
    clock["now"] += timedelta(days=5, seconds=1)
    sent_event(ada)
    deliveries_send()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "5 days" in endpoint.disabled_reason


def test_a_success_restarts_the_failure_clock(ada, endpoint, receiver, clock):
    receiver.script = [500]
    sent_event(ada)
    deliveries_send()
    clock["now"] = WebhookDelivery.objects.get().next_attempt_at
    deliveries_send()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_rotation_signs_with_both_secrets_during_the_overlap(client_for, ada, endpoint, receiver):
    answer = client_for(ada).post(f"{URL}/{endpoint.id}/rotate-secret")
    assert answer.status_code == 200
    receiver.secrets.append(answer.json()["data"]["secret"])
    sent_event(ada)
    deliveries_send()
    assert receiver.received[-1].verified_by == [0, 1] and len(receiver.received[-1].signatures) == 2
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now()
    )  # overlap over
    sent_event(ada)
    deliveries_send()
    assert receiver.received[-1].verified_by == [1] and len(receiver.received[-1].signatures) == 1


def test_redirects_are_not_followed(ada, endpoint, receiver):
    receiver.script = [("redirect", "http://169.254.169.254/latest/meta-data")]
    sent_event(ada)
    deliveries_send()
    assert len(receiver.received) == 1
    assert WebhookAttempt.objects.get().status_code == 302
    assert WebhookDelivery.objects.get().state == "pending"  # a failure, retried on the schedule


def test_dns_rebinding_is_caught_at_delivery(ada, receiver, settings, resolver):
    endpoint, _secret = endpoint_create(actor=ada, url="https://hooks.example.com/in")  # public at save
    resolver["hooks.example.com"] = ["127.0.0.1"]  # …and then it points inside
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    sent_event(ada)
    deliveries_send()
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "private network" in attempt.error


def test_a_large_answer_is_cut_to_two_kilobytes(ada, endpoint, receiver, monkeypatch):
    monkeypatch.setattr(receiver, "default", 200)
    original = receiver.handle
    monkeypatch.setattr(receiver, "handle", lambda handler, body: (original(handler, body)[0], "x" * 100_000))
    sent_event(ada)
    deliveries_send()
    assert len(WebhookAttempt.objects.get().response) == 2048


def test_redeliver_and_recover_send_the_same_event_again(client_for, ada, endpoint, receiver):
    receiver.default = 500
    event = sent_event(ada)
    deliveries_send()
    delivery = WebhookDelivery.objects.get()
    receiver.default = 200
    answer = client_for(ada).post(f"/api/v1/webhooks/deliveries/{delivery.id}/redeliver")
    assert answer.status_code == 202
    deliveries_send()
    assert [request.webhook_id for request in receiver.received] == [event.id, event.id]
    manual = WebhookDelivery.objects.get(manual=True)
    assert manual.state == "delivered" and manual.attempt_log.get().manual
    listed = client_for(ada).get(f"{URL}/{endpoint.id}/deliveries").json()["items"]
    assert {item["state"] for item in listed} == {"pending", "delivered"}
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    assert client_for(ada).post(f"{URL}/{endpoint.id}/recover", {"since": since}, format="json").json()[
        "data"
    ] == {
        "queued": 0  # the event reached it (by the redelivery)
    }


def test_a_disabled_endpoint_gets_nothing_until_enabled(client_for, ada, endpoint, receiver):
    assert client_for(ada).patch(f"{URL}/{endpoint.id}", {"enabled": False}, format="json").status_code == 200
    sent_event(ada)
    assert deliveries_send() == 0 and not receiver.received


# --- The console ------------------------------------------------------------------------------


def test_the_console_adds_an_endpoint_shows_the_secret_once_and_lists_attempts(client, ada, receiver):
    client.force_login(ada)
    answer = client.post("/admin/communication/webhookendpoint/add/",
                         {"url": f"{receiver.url}/hooks", "description": "CRM", "event_types": '["message.sent"]',
                          "enabled": "on"}, follow=True)  # fmt: skip
    assert answer.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.tenant_id == ada.tenant_id and endpoint.event_types == ["message.sent"]
    secret = decrypt(endpoint.secret)
    assert secret.encode() in answer.content  # once, in the message after saving
    assert (
        secret.encode()
        not in client.get(f"/admin/communication/webhookendpoint/{endpoint.pk}/change/").content
    )
    receiver.secrets.append(secret)
    receiver.script = [500]
    sent_event(ada)
    deliveries_send()
    delivery = WebhookDelivery.objects.get()
    page = client.get(f"/admin/communication/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200 and b"500" in page.content
    client.post(
        "/admin/communication/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.pk]}
    )
    deliveries_send()
    assert (
        receiver.received[-1].verified_by == [0] and WebhookDelivery.objects.filter(manual=True).count() == 1
    )


def test_the_console_refuses_an_internal_url(client, ada, resolver):
    client.force_login(ada)
    answer = client.post(
        "/admin/communication/webhookendpoint/add/", {"url": "https://10.0.0.8/", "event_types": "[]"}
    )
    assert answer.status_code == 200 and b"private network" in answer.content
    assert not WebhookEndpoint.objects.exists()


def test_another_tenants_deliveries_are_not_in_the_console(client, ada, bob, receiver):
    from tests.factories import UserFactory

    theirs, _secret = endpoint_create(actor=UserFactory(username="bea", tenant=bob.tenant, is_staff=True),
                                      url=f"{receiver.url}/b")  # fmt: skip
    sent_event(bob)
    delivery = WebhookDelivery.objects.get(endpoint=theirs)
    client.force_login(ada)
    assert client.get(f"/admin/communication/webhookdelivery/{delivery.pk}/change/").status_code in (302, 404)
    listing = client.get("/admin/communication/webhookdelivery/")
    assert listing.status_code == 200 and theirs.url.encode() not in listing.content


def test_the_readmes_receiver_example_verifies_a_real_delivery(ada, endpoint, receiver):
    """The snippet tenants copy must work: run it on what our sender really sent."""
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    (snippet,) = [
        block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "def verify(" in block
    ]
    namespace = {}
    exec(snippet, namespace)  # noqa: S102 - our own README
    event = sent_event(ada)
    deliveries_send()
    (request,) = receiver.received
    assert namespace["verify"](receiver.secrets[0], request.headers, request.body)["id"] == event.id
    with pytest.raises(ValueError, match="bad signature"):
        namespace["verify"](receiver.secrets[0], request.headers, request.body + b" ")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://10.0.0.1/"],
)
def test_with_http_allowed_internal_addresses_are_still_refused(client_for, ada, resolver, settings, url):
    """Where plain http is allowed (DEBUG), the address rule alone refuses these."""
    settings.WEBHOOK_ALLOW_HTTP = True
    answer = client_for(ada).post(URL, {"url": url}, format="json")
    assert answer.status_code == 400 and "private network" in str(answer.json()["errors"]["url"])


def test_an_endpoint_deleted_while_its_events_are_in_flight_is_no_error(client_for, ada, endpoint, receiver,
                                                                        monkeypatch):  # fmt: skip
    from communication.services import webhooks

    sent_event(ada)
    record = webhooks._record

    def delete_then_record(*args, **kwargs):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()  # an admin deleted it during the requests
        return record(*args, **kwargs)

    monkeypatch.setattr(webhooks, "_record", delete_then_record)
    assert deliveries_send() == 1
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()


def test_one_endpoints_backlog_cannot_fill_a_claim(ada, bob, receiver, monkeypatch):
    from communication.services import webhooks
    from tests.factories import UserFactory

    monkeypatch.setattr(webhooks, "PER_ENDPOINT_CLAIM", 3)
    busy, _secret = endpoint_create(actor=ada, url=f"{receiver.url}/busy")
    quiet, _secret = endpoint_create(actor=UserFactory(username="bea", tenant=bob.tenant, is_staff=True),
                                     url=f"{receiver.url}/quiet")  # fmt: skip
    for _ in range(5):
        sent_event(ada)
    sent_event(bob)
    claimed = webhooks._claim(10)
    assert sorted(d.endpoint_id for d in claimed) == sorted([busy.id] * 3 + [quiet.id])
