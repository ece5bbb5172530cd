"""End to end with Aliyun: API → worker → fake Aliyun → receipts pushed to a live server of this
service → stored, then applied by a worker through the real broker."""

from collections import Counter

import pytest

from authms.models import Tenant
from communication.models import CommunicationLog, PushedReports
from templates.models import Template
from tests.conftest import ALIYUN_RECEIPT_TOKEN
from tests.e2e.conftest import statuses, wait_until
from tests.e2e.test_submail_pipeline import BULK_URL


@pytest.fixture
def aliyun_route(settings, fake_aliyun, live_server):
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "aliyun"}
    fake_aliyun.receipt_url = f"{live_server.url}/api/v1/providers/aliyun/receipts/{ALIYUN_RECEIPT_TOKEN}"
    return fake_aliyun


def test_receipts_pushed_by_aliyun_are_applied_by_the_worker(sender, aliyun_route, worker):
    Template.objects.create(
        tenant=Tenant.objects.get(slug="e2e"), code="shipped", channel="sms", name="Shipped",
        body="Order {{order}} shipped.", provider_codes={"aliyun": "SMS_200"},
    )  # fmt: skip
    recipients = [f"+86137{index:08d}" for index in range(120)]
    response = sender.post(
        BULK_URL,
        {"channel": "sms", "template": "shipped", "variables": {"order": "A-1"}, "recipients": recipients},
        format="json",
    )
    assert response.status_code == 200, response.content[:300]
    batch_id = response.json()["batch_id"]
    wait_until(lambda: Counter(statuses(batch_id)) == {"sent": 120}, timeout=60)
    assert len(aliyun_route.messages) == 120  # SendBatchSms: two calls (100 + 20)

    answer = aliyun_route.report(aliyun_route.messages[:100], delivered=True)
    assert answer.json() == {"code": 0, "msg": "接收成功"}
    aliyun_route.report(aliyun_route.messages[100:], delivered=False, err_code="MK:0005")
    wait_until(lambda: Counter(statuses(batch_id)) == {"delivered": 100, "failed": 20}, timeout=60)
    assert not PushedReports.objects.exists()
    failed = CommunicationLog.objects.filter(batch_id=batch_id, status="failed")
    assert all("MK:0005" in log.error for log in failed)
