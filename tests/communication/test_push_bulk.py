"""POST /api/v1/communication/bulk with channel "push": user ids in, one log per active device
out, each through the provider serving its device's push service; size limits checked before
anything is stored."""

import pytest

from communication.models import Batch, CommunicationLog, Device
from providers.base import SendResult
from providers.registry import reset_cache
from templates.models import Template
from tests.factories import UserFactory

URL = "/api/v1/communication/bulk"


class RecordingPush:
    """Accepts every push and remembers what it was handed."""

    channels = frozenset({"push"})
    max_batch_size = 500
    can_reconcile = False
    received: list = []

    def __init__(self):
        self.name = ""

    def send_many(self, messages):
        RecordingPush.received.extend(messages)
        return [SendResult.sent(f"{self.name}-{m.log_id}") for m in messages]


@pytest.fixture
def push_services(settings):
    """Two recording providers, one per push service, so each log's route is visible."""
    RecordingPush.received = []
    path = f"{__name__}.RecordingPush"
    settings.COMMUNICATION_PROVIDERS = {
        **settings.COMMUNICATION_PROVIDERS,
        "fcm-test": path,
        "webpush-test": path,
    }
    settings.PUSH_PROVIDERS = {"fcm": "fcm-test", "webpush": "webpush-test"}
    reset_cache()
    yield RecordingPush.received
    reset_cache()


def device(user, provider="fcm", active=True, token=None):
    return Device.objects.create(
        tenant_id=user.tenant_id, user=user, platform="web" if provider == "webpush" else "android",
        provider=provider, token=token or f"{provider}-{Device.objects.count()}-" + "x" * 30, active=active,
    )  # fmt: skip


def send(client_for, actor, body, capture):
    with capture(execute=True):
        return client_for(actor).post(
            URL, {"channel": "push", "content": "Your order shipped", **body}, format="json"
        )


def test_one_log_per_active_device_each_through_its_push_service(
    client_for, ada, alice, bob, tenant_a, push_services, django_capture_on_commit_callbacks
):
    colleague, no_device = UserFactory(tenant=tenant_a), UserFactory(tenant=tenant_a)
    phone, browser = device(alice, "fcm"), device(alice, "webpush")
    device(alice, "fcm", active=False)
    theirs = device(colleague, "fcm")
    device(bob, "fcm")  # another tenant's user: never reached
    body = {
        "subject": "Shipped", "recipients": [alice.id, colleague.id, no_device.id, bob.id, alice.id],
        "data": {"order": "42"}, "link": "myapp://orders/42",
    }  # fmt: skip
    response = send(client_for, ada, body, django_capture_on_commit_callbacks)
    assert response.status_code == 200, response.json()
    logs = {log.recipient: log for log in CommunicationLog.objects.all()}
    assert set(logs) == {phone.id, browser.id, theirs.id, no_device.id, bob.id}
    assert (logs[phone.id].provider, logs[browser.id].provider) == ("fcm-test", "webpush-test")
    assert {logs[d].status for d in (phone.id, browser.id, theirs.id)} == {"sent"}
    assert logs[no_device.id].status == "failed" and "no active push device" in logs[no_device.id].error
    assert logs[bob.id].status == "failed" and "No such user" in logs[bob.id].error
    handed = {m.recipient: m for m in push_services}
    assert set(handed) == {phone.id, browser.id, theirs.id}
    message = handed[phone.id]
    assert (message.subject, message.body, message.data, message.link) == (
        "Shipped", "Your order shipped", {"order": "42"}, "myapp://orders/42",
    )  # fmt: skip
    assert Batch.objects.get().channel == "push"


def test_a_push_template_gives_title_and_body(
    client_for, ada, alice, push_services, django_capture_on_commit_callbacks
):
    Template.objects.create(tenant=alice.tenant, code="shipped", channel="push", name="Shipped",
                            subject="Order {{order}}", body="On its way, {{name}}!")  # fmt: skip
    device(alice)
    body = {
        "content": None,
        "template": "shipped",
        "variables": {"order": "42", "name": "Alice"},
        "recipients": [alice.id],
    }
    assert send(client_for, ada, body, django_capture_on_commit_callbacks).status_code == 200
    assert [(m.subject, m.body) for m in push_services] == [("Order 42", "On its way, Alice!")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "x" * 1001}, "content"),
        ({"data": {"blob": "y" * 3900}}, "content"),  # the whole notification past 3,993 bytes
        ({"data": {"from": "me"}}, "data"),
        ({"data": {"google.x": "1"}}, "data"),
        ({"data": {"n": 1}}, "data"),
        ({"data": ["a"]}, "data"),
        ({"link": "not a url"}, "link"),
    ],
)
def test_push_size_and_shape_are_checked_before_anything_is_stored(
    client_for, ada, alice, push_services, django_capture_on_commit_callbacks, body, field
):
    device(alice)
    response = send(client_for, ada, {"recipients": [alice.id], **body}, django_capture_on_commit_callbacks)
    assert response.status_code == 400, response.json()
    assert any(key.split(".")[0] == field for key in response.json()["errors"]), response.json()
    assert not CommunicationLog.objects.exists() and not push_services


def test_data_and_link_are_refused_on_other_channels(client_for, ada):
    response = client_for(ada).post(
        URL,
        {"channel": "sms", "content": "Hi", "recipients": ["13800138000"], "link": "https://x.example"},
        format="json",
    )
    assert response.status_code == 400 and "link" in response.json()["errors"]
    assert not CommunicationLog.objects.exists()


def test_the_embedded_default_prints_push_with_the_console_provider(
    client_for, ada, alice, settings, django_capture_on_commit_callbacks
):
    settings.PUSH_PROVIDERS = {"fcm": "console", "webpush": "console"}
    target = device(alice)
    assert (
        send(client_for, ada, {"recipients": [alice.id]}, django_capture_on_commit_callbacks).status_code
        == 200
    )
    log = CommunicationLog.objects.get()
    assert (log.recipient, log.provider, log.status) == (target.id, "console", "sent")
    # The log's recipient is the device id, never the token (a secret).
    listed = client_for(ada).get("/api/v1/admin/communication/logs", {"channel": "push"}).json()["items"]
    assert [item["recipient"] for item in listed] == [target.id] and target.token not in str(listed)
