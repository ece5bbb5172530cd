"""Email through django-anymail: batches per content, per-recipient outcomes, the transport rule."""

import pytest
from anymail.backends import test as anymail_test
from django.core import mail

from communication.models import CommunicationLog, Status, StatusDetail
from communication.services import bulk_send, dispatch_pending
from providers.base import Outcome, OutgoingMessage
from providers.registry import provider_by_name, reset_cache
from templates.models import Template


def _message(n, *, body="Hello", template="", unsubscribe=True, to=None):
    return OutgoingMessage(
        log_id=f"log_{n}", tenant_id="ten_1", channel="email", recipient=to or f"user{n}@example.com",
        subject="Hi", body=body, provider_template_id=template, variables={"name": f"N{n}"} if template else {},
        unsubscribe_url=f"https://example.com/u/{n}" if unsubscribe else "",
    )  # fmt: skip


def _send(messages):
    return provider_by_name("anymail").send_many(messages)


def test_same_content_goes_out_in_one_batch_call_with_one_message_id_each(fake_postmark):
    results = _send([_message(1), _message(2), _message(3), _message(4, body="Other text")])
    assert [r.outcome for r in results] == [Outcome.SENT] * 4
    assert fake_postmark.calls("email/batch") == 2  # one per content
    by_address = {email.to: email for email in fake_postmark.emails}
    assert [r.provider_message_id for r in results] == [
        by_address[f"user{n}@example.com"].message_id for n in (1, 2, 3, 4)
    ]
    first = by_address["user1@example.com"]
    assert first.headers["List-Unsubscribe"] == "<https://example.com/u/1>"
    assert first.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first.metadata == {"log_id": "log_1"}
    assert by_address["user4@example.com"].text == "Other text"


def test_an_esp_template_takes_each_recipients_variables_in_one_call(fake_postmark):
    results = _send([_message(1, template="welcome"), _message(2, template="welcome")])
    assert [r.outcome for r in results] == [Outcome.SENT] * 2
    assert fake_postmark.calls("email/batchWithTemplates") == 1
    assert {(e.to, e.template, e.model["name"]) for e in fake_postmark.emails} == {
        ("user1@example.com", "welcome", "N1"),
        ("user2@example.com", "welcome", "N2"),
    }


def test_an_address_twice_in_a_chunk_is_two_messages(fake_postmark):
    results = _send([_message(1, to="a@example.com"), _message(2, to="A@example.com")])
    assert [r.outcome for r in results] == [Outcome.SENT] * 2 and results[0].provider_message_id != results[
        1
    ].provider_message_id
    assert fake_postmark.deliveries() == ["a@example.com", "A@example.com"]


def test_an_address_the_esp_refuses_fails_alone(fake_postmark):
    fake_postmark.inactive = {"user2@example.com"}
    results = _send([_message(1), _message(2), _message(3)])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.SENT]
    assert "refused the address" in results[1].error and not results[1].provider_fault


@pytest.mark.parametrize(
    ("fault", "outcome", "words"),
    [
        ("refused", Outcome.RETRY, "could not be reached"),
        ("503", Outcome.RETRY, "not processed"),
        ("500", Outcome.UNKNOWN, "Outcome unknown"),
        ("slow", Outcome.UNKNOWN, "Outcome unknown"),
        ("token", Outcome.FAILED, "refused our credentials"),
    ],
)
def test_call_failures_follow_the_transport_rule(fake_postmark, settings, fault, outcome, words):
    if fault == "refused":
        fake_postmark.stop()
    elif fault == "503":
        fake_postmark.faults.http_503 = 1.0
    elif fault == "500":
        fake_postmark.faults.http_500 = 1.0
    elif fault == "slow":
        fake_postmark.faults.slow, fake_postmark.faults.slow_seconds = 1.0, 1.5
    else:
        settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "wrong"}
        reset_cache()
    results = _send([_message(1), _message(2)])
    assert {r.outcome for r in results} == {outcome}
    assert words in results[0].error
    assert results[0].provider_fault == (fault == "token")  # another provider could take these


def test_through_the_pipeline_with_anymails_test_backend(settings, alice):
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "email": "anymail"}
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    reset_cache()
    result = bulk_send(actor=alice, channel="email", recipients=["a@example.com", "b@example.com"],
                       subject="Hi", content="Hello")  # fmt: skip
    dispatch_pending(batch_id=result.batch.id)
    logs = CommunicationLog.objects.filter(batch_id=result.batch.id).order_by("recipient")
    assert [(log.status, log.provider) for log in logs] == [(Status.SENT, "anymail")] * 2
    (sent,) = mail.outbox  # one batch call
    assert sent.anymail_test_params["is_batch_send"] and sent.to == ["a@example.com", "b@example.com"]
    assert [log.provider_message_id for log in logs] == ["0", "0"]  # the test backend's id: the outbox index


def test_a_template_with_an_esp_code_sends_through_the_esp_template(fake_postmark, alice):
    Template.objects.create(
        tenant=alice.tenant, code="welcome", channel="email", name="Welcome", subject="Welcome",
        body="Hello {{name}}", provider_codes={"anymail": "welcome-v2"},
    )  # fmt: skip
    result = bulk_send(actor=alice, channel="email", recipients=["a@example.com"], template="welcome",
                       variables={"name": "Ada"})  # fmt: skip
    dispatch_pending(batch_id=result.batch.id)
    log = CommunicationLog.objects.get(batch_id=result.batch.id)
    assert (log.status, log.status_detail) == (Status.SENT, "")
    (email,) = fake_postmark.emails
    assert (email.template, email.model) == ("welcome-v2", {"name": "Ada"})
    assert log.provider_message_id == email.message_id


def test_a_refused_address_is_failed_as_rejected_in_the_pipeline(fake_postmark, alice):
    fake_postmark.inactive = {"gone@example.com"}
    result = bulk_send(actor=alice, channel="email", recipients=["gone@example.com", "ok@example.com"],
                       subject="Hi", content="Hello")  # fmt: skip
    dispatch_pending(batch_id=result.batch.id)
    statuses = dict(
        CommunicationLog.objects.filter(batch_id=result.batch.id).values_list("recipient", "status_detail")
    )
    assert statuses == {"gone@example.com": StatusDetail.REJECTED, "ok@example.com": ""}


class _PayloadWithoutBatches(anymail_test.TestPayload):
    def set_merge_metadata(self, merge_metadata):
        self.unsupported_feature("merge_metadata")


class BackendWithoutBatches(anymail_test.EmailBackend):
    """An ESP backend with no batch sending (anymail refuses per-recipient data for it)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, payload_class=_PayloadWithoutBatches, **kwargs)


def test_an_esp_without_batch_sending_gets_one_call_per_message(settings):
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "email": "anymail"}
    settings.EMAIL_BACKEND = f"{__name__}.BackendWithoutBatches"
    reset_cache()
    mail.outbox = []
    results = _send([_message(1), _message(2), _message(3)])
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert [sent.to for sent in mail.outbox] == [
        ["user1@example.com"],
        ["user2@example.com"],
        ["user3@example.com"],
    ]
    first = mail.outbox[0].anymail_test_params
    assert first["extra_headers"]["List-Unsubscribe"] == "<https://example.com/u/1>"
    assert first["metadata"] == {"log_id": "log_1"} and not first["is_batch_send"]
