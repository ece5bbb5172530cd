"""Schemathesis against every operation of the OpenAPI schema, as a user, a tenant admin and
a platform admin: no input may produce a 5xx, and every answer must match its schema.

`make test` runs this module twice, on PostgreSQL (with the rest of the suite) and on
SQLite: the two refuse different inputs (NUL bytes, offsets, date ranges), so a 500 can
hide in either. FUZZ_EXAMPLES sets the examples per operation (default 25); `make fuzz`
runs a longer campaign.
"""

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from authms.wsgi import application
from notifications.services import notify
from tests.conftest import access_token_for
from tests.factories import LogFactory

pytestmark = pytest.mark.fuzz
schema = schemathesis.openapi.from_wsgi("/api/v1/schema", application)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Requests go straight to the WSGI app, not through Django's test client, so they would
    close the test's database connection when they finish (and with it its transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def personas(alice, ada, root, bob, settings):
    """A little data of every kind, in two tenants, so lookups can hit as well as miss."""
    settings.BULK_THROTTLE_RATE = "100000/min"
    settings.LOGIN_THROTTLE_GLOBAL_RATE = "100000/s"
    for user in (alice, ada, bob):
        LogFactory(user=user, status="failed", error="Not a valid phone number.")
        LogFactory(user=user, channel="email", recipient=f"{user.username}@example.com", status="sent")
        notify(tenant_id=user.tenant_id, user_ids=[user.id], type="system", event_type="a.b", title="t")
    return {"user": alice, "tenant admin": ada, "platform admin": root}


@pytest.mark.parametrize("role", ["user", "tenant admin", "platform admin"])
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_input_causes_a_server_error_or_breaks_the_schema(case, role, personas):
    token = access_token_for(personas[role])
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
