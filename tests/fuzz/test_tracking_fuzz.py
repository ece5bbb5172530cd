"""Random bodies at the ESP tracking webhooks, authenticated as the ESP would be: the answer
is 200 or 400, never a 5xx. Runs on PostgreSQL and on SQLite (`make test` runs tests/fuzz on both)."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MAILGUN_SIGNING_KEY, WEBHOOK_SECRET
from tests.factories import LogFactory

pytestmark = pytest.mark.fuzz
MESSAGE_ID = "0c6e2a3e-6a3e-4f7e-9a59-7f1d1e1c9a11"

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
values = st.recursive(
    scalars | st.sampled_from([MESSAGE_ID, f"<{MESSAGE_ID}>", "ada@example.com", "2026-11-30T03:33:54Z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
POSTMARK_FIELDS = ["RecordType", "Type", "MessageID", "Email", "Recipient", "BouncedAt", "DeliveredAt",
                   "ReceivedAt", "ID", "Metadata", "Description", "Details", "OriginalLink", "SuppressSending"]  # fmt: skip
MAILGUN_FIELDS = ["event", "severity", "timestamp", "recipient", "reason", "message", "delivery-status",
                  "user-variables", "tags", "reject"]  # fmt: skip
postmark_bodies = st.dictionaries(st.sampled_from(POSTMARK_FIELDS), values, max_size=8) | values
mailgun_events = st.dictionaries(st.sampled_from(MAILGUN_FIELDS), values, max_size=8) | values


@pytest.fixture
def tracking(settings, client, alice):
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
    }
    LogFactory(user=alice, channel="email", provider="anymail", recipient="ada@example.com", status="sent",
               provider_message_id=MESSAGE_ID)  # fmt: skip
    client.defaults["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()

    def post(esp, body):
        return client.post(
            f"/api/v1/providers/anymail/{esp}/tracking/",
            data=json.dumps(body),
            content_type="application/json",
        )

    return post


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=postmark_bodies)
def test_postmark_tracking_never_answers_5xx(tracking, body):
    assert tracking("postmark", body).status_code in (200, 400)


@FUZZ
@given(event=mailgun_events, token=st.text(alphabet="0123456789abcdef", min_size=1, max_size=50))
def test_mailgun_tracking_never_answers_5xx(tracking, event, token):
    timestamp = str(int(time.time()))
    signature = hmac.new(
        MAILGUN_SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    body = {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }
    assert tracking("mailgun", body).status_code in (200, 400)
