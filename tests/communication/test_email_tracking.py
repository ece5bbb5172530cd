"""ESP tracking webhooks over real HTTP: Postmark (basic auth) and Mailgun (signed), through
django-anymail's views, into statuses, suppressions and events."""

import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests

from communication.models import (
    CommunicationLog,
    EmailEvent,
    Status,
    StatusDetail,
    Suppression,
    SuppressionLift,
)
from communication.services import bulk_send, dispatch_pending
from tests.conftest import MAILGUN_SIGNING_KEY, WEBHOOK_SECRET
from tests.factories import LogFactory, TenantFactory, UserFactory

AUTH = tuple(WEBHOOK_SECRET.split(":"))


@pytest.fixture
def hooks(live_server, fake_postmark):
    """POST to a tracking webhook: hooks("postmark", payload, auth=…)."""

    def post(esp, payload, *, auth=AUTH, raw=None):
        url = f"{live_server.url}/api/v1/providers/anymail/{esp}/tracking/"
        data = raw if raw is not None else json.dumps(payload)
        return requests.post(
            url, data=data, auth=auth, headers={"Content-Type": "application/json"}, timeout=10
        )

    return post


@pytest.fixture
def sender(transactional_db):
    return UserFactory(username="mailer", tenant=TenantFactory(slug="mail"))


def _sent(sender, *addresses, subject="Hi"):
    """Email really sent through the fake Postmark: {address: log}."""
    result = bulk_send(
        actor=sender, channel="email", recipients=list(addresses), subject=subject, content="Hello"
    )
    dispatch_pending(batch_id=result.batch.id)
    logs = {log.recipient: log for log in CommunicationLog.objects.filter(batch_id=result.batch.id)}
    assert {log.status for log in logs.values()} == {Status.SENT}
    return logs


def _postmark(record_type, log, **fields):
    """Postmark's documented webhook bodies (postmarkapp.com/developer/webhooks)."""
    base = {"RecordType": record_type, "MessageStream": "outbound", "MessageID": log.provider_message_id,
            "ServerID": 23, "Metadata": {"log_id": log.id}, "Tag": ""}  # fmt: skip
    if record_type == "Delivery":
        base |= {
            "Recipient": log.recipient,
            "DeliveredAt": "2026-11-30T03:33:54.9070259Z",
            "Details": "250 2.0.0 OK",
        }
    elif record_type in ("Bounce", "SpamComplaint"):
        base |= {"ID": fields.pop("ID", int(time.time() * 1000)), "Type": "HardBounce", "TypeCode": 1,
                 "Name": "Hard bounce", "Email": log.recipient, "BouncedAt": "2026-11-30T03:35:00Z",
                 "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
                 "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
                 "Inactive": True, "CanActivate": True, "Subject": "Hi"}  # fmt: skip
    elif record_type in ("Open", "Click"):
        base |= {"Recipient": log.recipient, "ReceivedAt": "2026-11-30T03:40:00Z", "FirstOpen": True,
                 "Platform": "WebMail", "UserAgent": "Mozilla/5.0", "OriginalLink": "https://example.com/offer"}  # fmt: skip
    return base | fields


def _mailgun(event, log, *, severity="permanent", key=MAILGUN_SIGNING_KEY, token=None):
    """Mailgun's documented webhook body, signed as Mailgun documents: hex HMAC-SHA256 of
    timestamp + token under the webhook signing key."""
    timestamp, token = str(int(time.time())), token or uuid.uuid4().hex
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": event, "severity": severity, "timestamp": time.time(), "id": uuid.uuid4().hex,
            "recipient": log.recipient, "reason": "bounce" if event == "failed" else None,
            "delivery-status": {"code": 550, "message": "5.1.1 No such user", "description": "Mailbox does not exist"},
            "message": {"headers": {"message-id": log.provider_message_id.strip("<>"), "to": log.recipient}},
            "user-variables": {},
        },
    }  # fmt: skip


def _mailgun_logs(sender, *addresses):
    """Logs as if sent through Mailgun (its message ids are <…@domain>)."""
    return [
        LogFactory(
            user=sender,
            channel="email",
            provider="anymail",
            recipient=address,
            status=Status.SENT,
            provider_message_id=f"<{uuid.uuid4().hex}@mg.example.com>",
        )  # fmt: skip
        for address in addresses
    ]


def _refresh(log):
    log.refresh_from_db()
    return log


def test_postmark_delivery_marks_the_log_delivered(hooks, sender):
    log = _sent(sender, "ada@example.com")["ada@example.com"]
    assert hooks("postmark", _postmark("Delivery", log)).status_code == 200
    assert _refresh(log).status == Status.DELIVERED
    assert list(log.email_events.values_list("kind", "esp")) == [("delivered", "Postmark")]


@pytest.mark.parametrize("auth", [None, ("hooks", "wrong"), ("other", "s3cret-pass")])
def test_a_forged_postmark_post_is_refused_and_changes_nothing(hooks, sender, auth):
    log = _sent(sender, "ada@example.com")["ada@example.com"]
    response = hooks("postmark", _postmark("Bounce", log), auth=auth)
    assert response.status_code == 403 and response.json()["code"] == 403
    assert _refresh(log).status == Status.SENT
    assert not Suppression.objects.exists() and not EmailEvent.objects.exists()


def test_a_hard_bounce_fails_the_log_and_stops_the_next_bulk_before_any_esp_call(
    hooks, sender, fake_postmark
):
    log = _sent(sender, "gone@example.com")["gone@example.com"]
    assert hooks("postmark", _postmark("Bounce", log)).status_code == 200
    log = _refresh(log)
    assert log.status == Status.FAILED and log.error.startswith("Bounced: The server was unable to deliver")
    suppression = Suppression.objects.get(recipient="gone@example.com")
    assert suppression.reason == "bounced" and "550 5.1.1" in suppression.detail

    calls = len(fake_postmark.requests)
    result = bulk_send(
        actor=sender, channel="email", recipients=["gone@example.com"], subject="Again", content="Hi"
    )
    dispatch_pending(batch_id=result.batch.id)
    again = CommunicationLog.objects.get(batch_id=result.batch.id)
    assert (again.status, again.status_detail) == (Status.FAILED, StatusDetail.SUPPRESSED)
    assert "suppression list (bounced on " in again.error
    assert len(fake_postmark.requests) == calls  # no ESP call for it


def test_a_complaint_suppresses_the_address_but_the_log_stays_delivered(hooks, sender, fake_postmark):
    log = _sent(sender, "angry@example.com")["angry@example.com"]
    hooks("postmark", _postmark("Delivery", log))
    complaint = _postmark("SpamComplaint", log, Type="SpamComplaint", Name="Spam complaint")
    assert hooks("postmark", complaint).status_code == 200
    assert _refresh(log).status == Status.DELIVERED  # never backwards
    assert Suppression.objects.get(recipient="angry@example.com").reason == "complained"
    result = bulk_send(
        actor=sender, channel="email", recipients=["angry@example.com"], subject="Hi", content="Hi"
    )
    assert "suppression list (complained on " in CommunicationLog.objects.get(batch_id=result.batch.id).error


def test_opens_and_clicks_are_counted_and_never_move_the_status(hooks, sender, client):
    log = _sent(sender, "reader@example.com")["reader@example.com"]
    for record_type in ("Open", "Open", "Click"):
        assert hooks("postmark", _postmark(record_type, log)).status_code == 200
    assert _refresh(log).status == Status.SENT
    assert sorted(log.email_events.values_list("kind", flat=True)) == ["clicked", "opened", "opened"]
    root = UserFactory(username="root", tenant=sender.tenant, is_staff=True, is_superuser=True)
    client.force_login(root)
    page = client.get(f"/admin/communication/communicationlog/{log.id}/change/").content.decode()
    assert "Opened 2, clicked 1" in page and "https://example.com/offer" in page


def test_a_redelivered_or_late_event_changes_nothing_more(hooks, sender):
    log = _sent(sender, "gone@example.com")["gone@example.com"]
    bounce = _postmark("Bounce", log, ID=424242)
    assert hooks("postmark", bounce).status_code == 200
    assert hooks("postmark", bounce).status_code == 200  # the ESP retried
    assert hooks("postmark", _postmark("Delivery", log)).status_code == 200  # out of order
    assert _refresh(log).status == Status.FAILED
    assert sorted(log.email_events.values_list("kind", flat=True)) == [
        "delivered",
        "hard_bounce",
    ]  # bounce once


def test_a_soft_bounce_fails_that_message_without_suppressing_yet(hooks, sender):
    log = _sent(sender, "full@example.com")["full@example.com"]
    hooks(
        "postmark",
        _postmark("Bounce", log, Type="SoftBounce", Name="Soft bounce", Description="Mailbox full"),
    )
    assert _refresh(log).error.startswith("Soft bounce: Mailbox full")
    assert not Suppression.objects.exists()


def test_mailgun_signed_events_apply_and_forged_ones_are_refused(hooks, sender):
    bounced, delivered = _mailgun_logs(sender, "gone@example.com", "ok@example.com")
    forged = _mailgun("failed", bounced, key="not-the-key")
    assert hooks("mailgun", forged).status_code == 403
    assert _refresh(bounced).status == Status.SENT and not Suppression.objects.exists()

    assert hooks("mailgun", _mailgun("failed", bounced)).status_code == 200
    assert hooks("mailgun", _mailgun("delivered", delivered)).status_code == 200
    assert _refresh(bounced).status == Status.FAILED and "5.1.1 No such user" in bounced.error
    assert _refresh(delivered).status == Status.DELIVERED
    assert Suppression.objects.get(recipient="gone@example.com").reason == "bounced"


def test_soft_bounces_of_three_messages_within_the_window_suppress(hooks, sender, settings):
    logs = _mailgun_logs(sender, *["full@example.com"] * 3)
    for number, log in enumerate(logs, start=1):
        twice = 2 if number == 1 else 1  # Mailgun retries: one message deferred twice counts once
        for _ in range(twice):
            assert hooks("mailgun", _mailgun("failed", log, severity="temporary")).status_code == 200
        assert Suppression.objects.filter(recipient="full@example.com").exists() == (number == 3)
        assert _refresh(log).status == Status.SENT  # deferred: the ESP keeps trying
    assert "3 soft bounces in 7 days" in Suppression.objects.get().detail


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("{not json", 400),
        ("[]", 400),
        ("null", 400),
        (json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "BouncedAt": 5}), 400),
        (
            json.dumps({"FromFull": {"Email": "a@example.com"}, "MessageID": "x"}),
            400,
        ),  # inbound sent to tracking
        (
            json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "MessageID": ["x"]}),
            200,
        ),  # names no message
    ],
)
def test_malformed_payloads_are_refused_or_harmless(hooks, sender, raw, status):
    log = _sent(sender, "ada@example.com")["ada@example.com"]
    response = hooks("postmark", None, raw=raw)
    assert response.status_code == status, response.text
    assert _refresh(log).status == Status.SENT
    assert not EmailEvent.objects.exists() and not Suppression.objects.exists()


def test_an_unknown_message_id_is_acknowledged_and_changes_nothing(hooks, sender):
    log = _sent(sender, "ada@example.com")["ada@example.com"]
    stranger = _postmark("Bounce", log, MessageID=str(uuid.uuid4()))
    assert hooks("postmark", stranger).status_code == 200
    assert _refresh(log).status == Status.SENT and not Suppression.objects.exists()


def test_an_event_pairing_a_message_id_with_another_tenants_address_or_log_changes_nothing(hooks, sender):
    log = _sent(sender, "ada@example.com")["ada@example.com"]
    other = _sent(UserFactory(username="other", tenant=TenantFactory(slug="other")), "bea@example.com")[
        "bea@example.com"
    ]
    for forged in (
        _postmark("Bounce", log, Email="bea@example.com"),  # ada's message id, bea's address
        _postmark("Bounce", log, Metadata={"log_id": other.id}),  # ada's message id, bea's log
    ):
        assert hooks("postmark", forged).status_code == 200
    assert _refresh(log).status == _refresh(other).status == Status.SENT
    assert not Suppression.objects.exists() and not EmailEvent.objects.exists()


def test_an_esp_without_webhook_authentication_is_not_served(hooks, settings, sender):
    settings.ANYMAIL = {key: value for key, value in settings.ANYMAIL.items() if key != "WEBHOOK_SECRET"}
    log = _sent(sender, "ada@example.com")["ada@example.com"]
    assert hooks("postmark", _postmark("Bounce", log), auth=None).status_code == 404
    assert _refresh(log).status == Status.SENT


def test_staff_lift_a_suppression_only_with_a_reason_and_it_is_audited(client, ada, bob):
    mine = Suppression.objects.create(
        tenant=ada.tenant, channel="email", recipient="a@example.com", reason="bounced"
    )
    theirs = Suppression.objects.create(
        tenant=bob.tenant, channel="email", recipient="b@example.com", reason="bounced"
    )
    client.force_login(ada)
    url = "/admin/communication/suppression/"
    action = {"action": "lift", "_selected_action": [mine.pk, theirs.pk]}
    page = client.post(url, action)
    assert page.status_code == 200 and b"Why is it lifted?" in page.content  # asks first
    assert Suppression.objects.count() == 2
    client.post(url, {**action, "note": "Customer fixed their mailbox (ticket 4711)."})
    assert list(Suppression.objects.values_list("recipient", flat=True)) == ["b@example.com"]  # not theirs
    lift = SuppressionLift.objects.get()
    assert (lift.recipient, lift.was, lift.lifted_by, lift.note) == (
        "a@example.com", "bounced", ada, "Customer fixed their mailbox (ticket 4711).",
    )  # fmt: skip
    assert client.get(f"{url}{theirs.pk}/delete/").status_code == 403  # never deleted without a reason
