"""Aliyun's unsigned HTTP pushes: receipts and replies at a secret URL, through the real URL stack."""

import json

import pytest
from rest_framework.test import APIClient

from communication import tasks
from communication.models import CommunicationLog, PushedReports, Suppression
from communication.services import pushed_reports_apply, pushed_reports_keep, report_as_dict, sweep_pending
from providers.base import StatusReport
from tests.conftest import ALIYUN_RECEIPT_TOKEN
from tests.factories import LogFactory

RECEIPTS = f"/api/v1/providers/aliyun/receipts/{ALIYUN_RECEIPT_TOKEN}"
REPLIES = f"/api/v1/providers/aliyun/replies/{ALIYUN_RECEIPT_TOKEN}"


def _post(url, body):
    return APIClient().post(url, json.dumps(body), content_type="application/json")


def _receipt(log, *, success=True, code="DELIVERED", report_time="2026-11-30 08:00:05"):
    out_id, phone = log.provider_message_id.split("/")
    return {"phone_number": phone, "send_time": "2026-11-30 08:00:00", "report_time": report_time,
            "success": success, "err_code": code, "err_msg": "x", "sms_size": "1", "biz_id": "1700000^0", "out_id": out_id}  # fmt: skip


@pytest.fixture
def sent_aliyun(alice, fake_aliyun):
    def make(n):
        return [
            LogFactory(
                user=alice, provider="aliyun", status="sent", provider_message_id=f"rOUT/1390000000{i}"
            )
            for i in range(n)
        ]

    return make


def test_a_batch_of_receipts_is_acknowledged_as_aliyun_requires_and_applied(sent_aliyun):
    delivered, failed, other_tenant_noise = sent_aliyun(3)
    response = _post(RECEIPTS, [_receipt(delivered), _receipt(failed, success=False, code="MK:0005")])
    assert (response.status_code, response.json()) == (200, {"code": 0, "msg": "接收成功"})
    statuses = dict(CommunicationLog.objects.values_list("id", "status"))
    assert (statuses[delivered.id], statuses[failed.id], statuses[other_tenant_noise.id]) == (
        "delivered", "failed", "sent",
    )  # fmt: skip
    failed.refresh_from_db()
    assert "MK:0005" in failed.error
    assert not PushedReports.objects.exists()  # kept until applied, then forgotten


def test_receipts_whose_task_is_lost_are_applied_by_the_sweep(sent_aliyun, settings, monkeypatch):
    """Aliyun has its answer and will not push again: the request keeps the receipts, so a task
    lost with its worker or with the broker costs a sweep's delay, not the receipts."""
    (log,) = sent_aliyun(1)
    monkeypatch.setattr(tasks.apply_pushed_reports, "delay", lambda kept_id: None)
    assert _post(RECEIPTS, [_receipt(log)]).status_code == 200
    log.refresh_from_db()
    assert log.status == "sent"
    assert sweep_pending().pushed_reports == 0  # not yet: the task may only be late
    settings.PUSHED_REPORTS_SWEEP_AFTER_SECONDS = 0
    assert sweep_pending().pushed_reports == 1
    log.refresh_from_db()
    assert log.status == "delivered" and not PushedReports.objects.exists()


def test_kept_receipts_are_applied_once_by_whoever_comes_first(sent_aliyun):
    (log,) = sent_aliyun(1)
    kept_id = pushed_reports_keep(
        provider="aliyun", reports=[StatusReport(log.provider_message_id, "delivered")]
    )
    assert pushed_reports_apply(kept_id=kept_id) == 1
    assert pushed_reports_apply(kept_id=kept_id) == 0  # the late task after the sweep
    assert not PushedReports.objects.exists()


def test_kept_receipts_that_cannot_be_applied_do_not_hold_up_the_others(sent_aliyun, settings, caplog):
    (log,) = sent_aliyun(1)
    unreadable = PushedReports.objects.create(provider="aliyun", reports=[{"unreadable": True}])
    pushed_reports_keep(provider="aliyun", reports=[StatusReport(log.provider_message_id, "delivered")])
    settings.PUSHED_REPORTS_SWEEP_AFTER_SECONDS = 0
    assert sweep_pending().pushed_reports == 1
    assert list(PushedReports.objects.values_list("id", flat=True)) == [unreadable.id]
    assert "Could not apply kept pushed reports" in caplog.text


def test_a_replayed_or_late_receipt_never_moves_a_status_backwards(sent_aliyun):
    (log,) = sent_aliyun(1)
    _post(RECEIPTS, [_receipt(log)])
    assert _post(RECEIPTS, [_receipt(log, success=False, code="MK:0001")]).status_code == 200
    log.refresh_from_db()
    assert log.status == "delivered"


def test_unknown_ids_change_nothing_and_are_acknowledged(sent_aliyun):
    (log,) = sent_aliyun(1)
    body = [{**_receipt(log), "out_id": "rSOMEONE-ELSE"}]
    assert _post(RECEIPTS, body).status_code == 200
    log.refresh_from_db()
    assert log.status == "sent"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/providers/aliyun/receipts/wrong-token",
        "/api/v1/providers/nope/receipts/x",
        f"/api/v1/providers/submail/receipts/{ALIYUN_RECEIPT_TOKEN}",
    ],
)
def test_a_wrong_token_or_provider_is_a_404(url, sent_aliyun):
    (log,) = sent_aliyun(1)
    response = _post(url, [_receipt(log)])
    assert response.status_code == 404 and response.json()["code"] == 404
    log.refresh_from_db()
    assert log.status == "sent"


def test_no_token_configured_means_no_receiver(sent_aliyun, settings):
    settings.ALIYUN_RECEIPT_TOKEN = ""
    assert _post("/api/v1/providers/aliyun/receipts/", []).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"biz_id": "1"},
        [{"phone_number": "1"}],
        ["x"],
        [{"biz_id": "1", "phone_number": "2", "success": "yes"}],
    ],
)
def test_malformed_receipts_are_a_400(body, sent_aliyun):
    response = _post(RECEIPTS, body)
    assert response.status_code == 400 and response.json()["code"] == 400


def test_malformed_json_is_a_400(sent_aliyun):
    response = APIClient().post(RECEIPTS, "[{", content_type="application/json")
    assert response.status_code == 400


def test_a_td_reply_suppresses_the_number_for_the_tenants_that_texted_it(sent_aliyun, alice):
    (log,) = sent_aliyun(1)
    CommunicationLog.objects.filter(id=log.id).update(recipient="+8613900000000")
    body = [{"phone_number": "13900000000", "content": "TD", "send_time": "2026-11-30 08:00:00",
             "sign_name": "x", "dest_code": "1", "sequence_id": 1}]  # fmt: skip
    assert _post(REPLIES, body).json() == {"code": 0, "msg": "接收成功"}
    assert Suppression.objects.filter(tenant_id=alice.tenant_id, recipient="+8613900000000").exists()
    assert _post(REPLIES, [{"phone_number": 5}]).status_code == 400


def test_a_task_queued_by_the_previous_version_with_the_reports_themselves_is_applied(sent_aliyun):
    (log,) = sent_aliyun(1)
    tasks.apply_pushed_reports([report_as_dict(StatusReport(log.provider_message_id, "delivered"))])
    log.refresh_from_db()
    assert log.status == "delivered"
