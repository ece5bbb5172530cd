"""POST/GET/DELETE /api/v1/devices through the real URL stack with real JWTs: registration is an
idempotent upsert, tokens are masked everywhere, every persona sees exactly what it may, and bad
targets (malformed subscriptions, internal endpoints) are 400s with the envelope."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from communication.models import Device
from tests.factories import UserFactory

URL = "/api/v1/devices"
FCM_TOKEN = "cJ3mX8o1Q0eZ:APA91bHq7Yk2vL0pN4sR6tU8wX0zB2dF4hJ6kM8nP0rT2vX4zA6cE8gI0kM2oQ4sU6wY8"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def browser_keys() -> dict:
    """A browser's subscription keys: a P-256 public key (65 bytes) and a 16-byte auth secret."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    return {
        "p256dh": b64url(public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)),
        "auth": b64url(b"0123456789abcdef"),
    }


def subscription(endpoint="https://fcm.googleapis.com/fcm/send/abc123:APA91bXyz", **keys):
    return {"endpoint": endpoint, "expirationTime": None, "keys": {**browser_keys(), **keys}}


def register(client, **body):
    return client.post(URL, {"platform": "android", "token": FCM_TOKEN, **body}, format="json")


def test_register_masks_the_token_and_a_second_registration_updates(client_for, alice):
    client = client_for(alice)
    first = register(client, name="Pixel", locale="zh-CN", time_zone="Asia/Shanghai", app_id="com.acme.app")
    assert first.status_code == 201, first.json()
    data = first.json()["data"]
    assert data["token"] == f"{FCM_TOKEN[:6]}…{FCM_TOKEN[-4:]}" and FCM_TOKEN not in first.content.decode()
    assert (data["platform"], data["provider"], data["active"], data["time_zone"]) == (
        "android",
        "fcm",
        True,
        "Asia/Shanghai",
    )
    Device.objects.filter(id=data["id"]).update(active=False, failure_count=3, last_error="gone")
    again = register(client, name="Pixel 9")
    assert again.status_code == 200 and again.json()["data"]["id"] == data["id"]
    device = Device.objects.get()
    assert (device.name, device.active, device.failure_count, device.last_error) == ("Pixel 9", True, 0, "")


def test_a_token_registered_by_another_user_moves_to_the_new_one(client_for, alice, tenant_a):
    colleague = UserFactory(tenant=tenant_a)
    register(client_for(alice))
    moved = register(client_for(colleague))
    assert moved.status_code == 200
    assert Device.objects.get().user_id == colleague.id
    assert client_for(alice).get(URL).json()["total"] == 0


def test_the_same_token_in_another_tenant_is_that_tenants_own_device(client_for, alice, bob):
    register(client_for(alice))
    assert register(client_for(bob)).status_code == 201
    assert Device.objects.filter(token=FCM_TOKEN).count() == 2


def test_a_new_token_from_the_same_install_replaces_the_old_one(client_for, alice):
    client = client_for(alice)
    register(client, device_id="install-1")
    register(client, token=FCM_TOKEN[:-4] + "ZZZZ", device_id="install-1")
    register(client, token=FCM_TOKEN[:-4] + "YYYY", device_id="install-2")
    assert sorted(Device.objects.values_list("token", flat=True)) == sorted(
        [FCM_TOKEN[:-4] + "ZZZZ", FCM_TOKEN[:-4] + "YYYY"]
    )


def test_past_the_per_user_limit_the_stalest_device_is_deactivated(client_for, alice, settings):
    settings.DEVICES_PER_USER = 2
    client = client_for(alice)
    ids = [register(client, token=f"{FCM_TOKEN[:-2]}{n:02d}").json()["data"]["id"] for n in range(3)]
    active = dict(Device.objects.values_list("id", "active"))
    assert active == {ids[0]: False, ids[1]: True, ids[2]: True}


def test_web_push_subscription_is_stored_with_its_keys(client_for, alice):
    body = {"platform": "web", "subscription": subscription()}
    response = client_for(alice).post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    device = Device.objects.get()
    assert device.provider == "webpush" and device.token == body["subscription"]["endpoint"]
    assert device.p256dh == body["subscription"]["keys"]["p256dh"] and len(device.auth) == 22
    assert device.auth not in response.content.decode() and device.token not in response.content.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "watch"}, "platform"),
        ({"platform": "android", "token": "short"}, "token"),
        ({"platform": "android", "token": "a b" * 20}, "token"),
        ({"platform": "android", "token": 12345}, "token"),
        ({"platform": "android", "token": FCM_TOKEN, "provider": "apns"}, "provider"),
        ({"platform": "android", "provider": "webpush", "subscription": subscription()}, "provider"),
        ({"platform": "web", "provider": "webpush"}, "subscription"),
        ({"platform": "web", "subscription": "https://fcm.googleapis.com/x"}, "subscription"),
        ({"platform": "web", "subscription": {"endpoint": "https://fcm.googleapis.com/x"}}, "subscription"),
        ({"platform": "web", "subscription": subscription(p256dh=b64url(b"\x04" + b"1" * 63))}, "subscription.keys.p256dh"),
        ({"platform": "web", "subscription": subscription(p256dh=b64url(b"\x05" + b"1" * 64))}, "subscription.keys.p256dh"),
        ({"platform": "web", "subscription": subscription(auth=b64url(b"x" * 15))}, "subscription.keys.auth"),
        ({"platform": "web", "subscription": subscription(auth="not base64!")}, "subscription.keys.auth"),
        ({"platform": "web", "subscription": subscription("not a url")}, "subscription.endpoint"),
        ({"platform": "web", "subscription": subscription("http://fcm.googleapis.com/fcm/send/x")}, "subscription.endpoint"),
        ({"platform": "web", "subscription": subscription("https://evil.example.com/push/1")}, "subscription.endpoint"),
        ({"platform": "web", "subscription": subscription("https://user:pw@fcm.googleapis.com/x")}, "subscription.endpoint"),
        ({"platform": "android", "token": FCM_TOKEN, "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"platform": "android", "token": FCM_TOKEN, "locale": "<script>"}, "locale"),
        ({"platform": "android", "token": FCM_TOKEN, "subscription": subscription()}, "subscription"),
    ],
)  # fmt: skip
def test_bad_targets_are_400_with_the_envelope_and_nothing_stored(client_for, alice, body, field):
    response = client_for(alice).post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert not Device.objects.exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1/push/1", "https://10.0.0.8/push/1", "https://169.254.169.254/latest/meta-data",
        "https://[::1]/push", "https://[::ffff:192.168.1.1]/push", "https://localhost/push",
        "https://push.internal/x", "https://printer.local/x", "https://0.0.0.0/x",
    ],
)  # fmt: skip
def test_web_push_endpoints_inside_a_private_network_are_refused(client_for, alice, settings, endpoint):
    settings.WEBPUSH_ENDPOINT_HOSTS = []  # any public host: the address rule alone must hold
    response = client_for(alice).post(
        URL, {"platform": "web", "subscription": subscription(endpoint)}, format="json"
    )
    assert response.status_code == 400 and "subscription.endpoint" in response.json()["errors"]


def test_any_public_host_when_the_list_is_empty_and_http_only_where_allowed(client_for, alice, settings):
    settings.WEBPUSH_ENDPOINT_HOSTS = []
    ok = client_for(alice).post(
        URL, {"platform": "web", "subscription": subscription("https://push.example.net/1")}, format="json"
    )
    assert ok.status_code == 201
    settings.WEBPUSH_ALLOW_HTTP = True
    plain = subscription("http://push.example.net/2")
    assert (
        client_for(alice).post(URL, {"platform": "web", "subscription": plain}, format="json").status_code
        == 201
    )


def test_each_persona_lists_and_deletes_what_it_may(client_for, alice, ada, bob, root, tenant_a):
    colleague = UserFactory(tenant=tenant_a)
    mine = register(client_for(alice)).json()["data"]["id"]
    theirs = register(client_for(colleague), token=FCM_TOKEN + "x").json()["data"]["id"]
    globex = register(client_for(bob)).json()["data"]["id"]

    assert [d["id"] for d in client_for(alice).get(URL).json()["items"]] == [mine]
    assert client_for(alice).get(URL, {"user_id": colleague.id}).status_code == 403
    assert client_for(alice).get(f"{URL}/{theirs}").status_code == 404
    assert client_for(alice).delete(f"{URL}/{theirs}").status_code == 404
    assert client_for(alice).delete(f"{URL}/{globex}").status_code == 404

    assert [d["id"] for d in client_for(ada).get(URL, {"user_id": colleague.id}).json()["items"]] == [theirs]
    assert client_for(ada).get(URL, {"user_id": bob.id}).status_code == 404
    assert client_for(ada).get(f"{URL}/{globex}").status_code == 404
    assert client_for(ada).delete(f"{URL}/{globex}").status_code == 404

    assert [d["id"] for d in client_for(root).get(URL, {"user_id": bob.id}).json()["items"]] == [globex]
    assert client_for(ada).delete(f"{URL}/{theirs}").status_code == 200
    assert client_for(alice).delete(f"{URL}/{mine}").status_code == 200
    assert list(Device.objects.values_list("id", flat=True)) == [globex]


def test_the_console_shows_devices_masked_and_scoped(client, ada, alice, bob, client_for):
    register(client_for(alice), name="Alice's phone")
    register(client_for(bob), token=FCM_TOKEN + "b", name="Bob's phone")
    client.force_login(ada)
    page = client.get("/admin/communication/device/").content.decode()
    # Bob's device by its escaped name and its masked token (a bare "Bob" also matched a random
    # CSRF token in the page now and then).
    assert "Alice&#x27;s phone" in page and "Bob&#x27;s phone" not in page and FCM_TOKEN not in page
    bobs_token = FCM_TOKEN + "b"
    assert f"{FCM_TOKEN[:6]}…{FCM_TOKEN[-4:]}" in page and f"{bobs_token[:6]}…{bobs_token[-4:]}" not in page
