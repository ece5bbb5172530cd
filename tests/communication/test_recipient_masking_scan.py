"""No served field shows a recipient unmasked: the API lists, the bulk answer, the admin list,
detail page and CSV, and what the log stores, for providers that echo recipients back."""

import re

import pytest
from django.urls import reverse

from communication.models import CommunicationLog
from providers.base import SendResult
from templates.models import Template

PHONE, PHONE_FORMS = "+8613812345678", ("+8613812345678", "8613812345678", "13812345678")
EMAIL, EMAIL_FORMS = "Zhang.San@Example.com", ("zhang.san@example.com",)


def _raw_forms_in(text: str, forms) -> list[str]:
    return [form for form in forms if re.search(re.escape(form), text, flags=re.IGNORECASE)]


def _served_texts(client_for, client, ada, alice, logs) -> dict[str, str]:
    """Every surface a log is served through, as text."""
    texts = {
        "user list": client_for(alice).get("/api/v1/communication/logs").content.decode(),
        "admin list": client_for(ada).get("/api/v1/admin/communication/logs").content.decode(),
    }
    client.force_login(ada)
    changelist = reverse("admin:communication_communicationlog_changelist")
    texts["admin changelist"] = client.get(changelist).content.decode()
    for log in logs:
        detail = reverse("admin:communication_communicationlog_change", args=[log.id])
        texts[f"admin detail {log.id}"] = client.get(detail).content.decode()
    export = client.get(changelist, {"export": "csv"})
    texts["csv"] = b"".join(export.streaming_content).decode()
    return texts


def _assert_nothing_unmasked(texts: dict[str, str], forms):
    leaks = {where: found for where, text in texts.items() if (found := _raw_forms_in(text, forms))}
    assert leaks == {}


def test_submail_template_answers_echoing_the_number_are_masked_everywhere(
    client_for, client, ada, alice, tenant_a, fake_submail, django_capture_on_commit_callbacks
):
    Template.objects.create(tenant=tenant_a, code="otp", channel="sms", name="OTP", body="Code {{c}}",
                            provider_codes={"submail": "H5OSN4"})  # fmt: skip
    body = {"channel": "sms", "template": "otp", "variables": {"c": "1"},
            "recipients": [PHONE, "+8613900000000"]}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        answer = client_for(alice).post("/api/v1/communication/bulk", body, format="json")
    assert answer.status_code == 200
    assert _raw_forms_in(answer.content.decode(), PHONE_FORMS) == []
    log = CommunicationLog.objects.get(recipient=PHONE)
    assert log.status == "sent" and '"to"' in log.response  # the provider did echo a number…
    assert _raw_forms_in(log.response, PHONE_FORMS) == []  # …and it was masked before storing
    _assert_nothing_unmasked(_served_texts(client_for, client, ada, alice, [log]), PHONE_FORMS)


def test_refusal_texts_naming_the_address_are_masked_everywhere(
    client_for, client, ada, alice, recording_provider, django_capture_on_commit_callbacks
):
    def refuse(message):
        return SendResult.failed(
            f"Mail server refused the message: 550 5.1.1 <{message.recipient.upper()}> no such user",
            response=f'{{"rcpt": "{message.recipient}"}}',
        )

    recording_provider.behaviour = refuse
    body = {"channel": "email", "subject": "Hi", "content": "x", "recipients": [EMAIL]}
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(alice).post("/api/v1/communication/bulk", body, format="json").status_code == 200
    log = CommunicationLog.objects.get()
    assert log.status == "failed" and "Z***@example.com" in log.error
    _assert_nothing_unmasked(_served_texts(client_for, client, ada, alice, [log]), EMAIL_FORMS)


def test_rows_stored_before_masking_are_masked_when_served(client_for, client, ada, alice):
    from tests.factories import LogFactory

    log = LogFactory(user=alice, recipient=PHONE, status="failed",
                     error="Carrier says 13812345678 is blocked", response='{"to": "8613812345678"}')  # fmt: skip
    texts = _served_texts(client_for, client, ada, alice, [log])
    _assert_nothing_unmasked(texts, PHONE_FORMS)
    assert "138****5678" in texts["user list"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("to +8613812345678 and 13812345678", "to 138****5678 and 138****5678"),
        ("no number here", "no number here"),
        (None, None),
    ],
)
def test_redaction_covers_every_spelling(text, expected):
    from communication.masking import redact_recipient

    assert redact_recipient(text, "sms", PHONE) == expected
