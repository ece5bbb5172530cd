"""Inputs that used to reach the database or a provider and fail there (500s, "outcome
unknown"): each is now a clear 4xx, or a per-message failure that says why."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from communication.models import CommunicationLog
from tests.factories import LogFactory

USER_URL = "/api/v1/communication/logs"
ADMIN_URL = "/api/v1/admin/communication/logs"
BULK_URL = "/api/v1/communication/bulk"

EXTREME_TIMES = [
    "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC: SQLite overflowed
    "9999-12-31T23:59:59-14:00",  # after year 9999 once in UTC
]


@pytest.mark.parametrize("url", [USER_URL, ADMIN_URL])
@pytest.mark.parametrize("param", ["created_after", "created_before"])
@pytest.mark.parametrize("value", EXTREME_TIMES)
def test_times_outside_the_representable_range_are_400(client_for, ada, url, param, value):
    response = client_for(ada).get(url, {param: value})
    assert response.status_code == 400, response.content
    assert param in response.json()["errors"]


@pytest.mark.parametrize("url", [USER_URL, ADMIN_URL])
def test_offsets_postgresql_refuses_are_converted_to_utc_and_work(client_for, ada, url):
    """+16:00 is a valid Python offset but beyond PostgreSQL's ±15:59."""
    now = timezone.now()
    inside = LogFactory(user=ada, created_at=now - timedelta(hours=1))
    LogFactory(user=ada, created_at=now - timedelta(days=3))  # same tenant and user, outside the window
    after = (now - timedelta(hours=2)).astimezone(timezone.get_fixed_timezone(16 * 60))
    response = client_for(ada).get(url, {"created_after": after.isoformat()})
    assert response.status_code == 200, response.content
    assert [item["id"] for item in response.json()["items"]] == [inside.id]


@pytest.mark.parametrize("url", [USER_URL, ADMIN_URL])
@pytest.mark.parametrize("param", ["created_after", "created_before"])
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_time_is_400_not_silently_ignored(client_for, ada, url, param, value):
    response = client_for(ada).get(url, {param: value})
    assert response.status_code == 400 and param in response.json()["errors"]


# --- Email subjects ---------------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["Hello\r\nBcc: victim@example.com", "Hello\nthere", "Hi\rthere"])
def test_a_subject_with_a_line_break_is_400_and_creates_nothing(client_for, alice, subject):
    body = {"channel": "email", "subject": subject, "content": "x", "recipients": ["a@example.com"]}
    response = client_for(alice).post(BULK_URL, body, format="json")
    assert response.status_code == 400 and "subject" in response.json()["errors"]
    assert not CommunicationLog.objects.exists()


def test_a_line_break_arriving_through_a_template_variable_is_400_too(client_for, alice, tenant_a):
    from templates.models import Template

    Template.objects.create(tenant=tenant_a, code="welcome", channel="email", name="W",
                            subject="Welcome {{name}}", body="Hi")  # fmt: skip
    body = {"channel": "email", "template": "welcome", "variables": {"name": "x\nBcc: y@example.com"},
            "recipients": ["a@example.com"]}  # fmt: skip
    response = client_for(alice).post(BULK_URL, body, format="json")
    assert response.status_code == 400 and "subject" in response.json()["errors"]


def test_an_email_that_cannot_be_built_fails_permanently_never_outcome_unknown(alice, settings):
    """Whatever slips past validation: the backend refuses it before a byte leaves."""
    from communication.services import dispatch_pending

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    log = LogFactory(user=alice, channel="email", provider="smtp", recipient="a@example.com",
                     subject="bad\nsubject", batch_id="bat_E")  # fmt: skip
    dispatch_pending(batch_id="bat_E")
    log.refresh_from_db()
    assert log.status == "failed"
    assert log.error.startswith("The message could not be built") and "unknown" not in log.error.lower()
    assert mail.outbox == []


# --- SMS length --------------------------------------------------------------------------------


def test_the_sms_limit_counts_the_signature_the_provider_prefixes(client_for, alice, fake_submail, settings):
    settings.SUBMAIL_SIGNATURE = "【Acme】"  # 6 characters
    client = client_for(alice)
    fits = {"channel": "sms", "content": "x" * 994, "recipients": ["13800138000"]}
    assert client.post(BULK_URL, fits, format="json").status_code == 200
    too_long = {**fits, "content": "x" * 995}
    response = client.post(BULK_URL, too_long, format="json")
    assert response.status_code == 400
    assert "1,001" in response.json()["message"] and "1,000" in response.json()["message"]


def test_a_text_that_brings_its_own_signature_is_counted_as_it_is(client_for, alice, fake_submail):
    body = {"channel": "sms", "content": "【Other】" + "x" * 993, "recipients": ["13800138000"]}
    assert client_for(alice).post(BULK_URL, body, format="json").status_code == 200
