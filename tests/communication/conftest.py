from datetime import UTC, datetime

import pytest
from django.utils import timezone

from communication.models import CommunicationLog
from communication.services import dispatch_pending
from tests.factories import LogFactory


@pytest.fixture
def sent_logs(alice, fake_submail):
    """Logs sent for real through the fake server, with their send ids."""

    def make(count):
        for i in range(count):
            LogFactory(user=alice, provider="submail", batch_id="bat_S", recipient=f"+86139{i:08d}")
        dispatch_pending(batch_id="bat_S")
        return list(CommunicationLog.objects.filter(batch_id="bat_S").order_by("id"))

    return make


CLOCK_START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """timezone.now() under the test's control, from CLOCK_START: set clock["now"] to move it."""
    current = {"now": CLOCK_START}
    monkeypatch.setattr(timezone, "now", lambda: current["now"])
    return current
