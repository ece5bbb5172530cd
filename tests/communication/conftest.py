import pytest

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
