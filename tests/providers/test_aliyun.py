"""The Aliyun provider against the fake Aliyun server, which checks signatures on its own."""

import json

import pytest

from providers.aliyun import AliyunSmsProvider
from providers.base import InvalidReceipt, OutgoingMessage
from providers.registry import provider_by_name


def _message(number: str, *, template="SMS_100", variables=None, reference="rREF1") -> OutgoingMessage:
    return OutgoingMessage(
        log_id=f"log_{number}",
        tenant_id="ten_1",
        channel="sms",
        recipient=f"+86{number}",
        subject="",
        body="Your code is 1234",
        provider_template_id=template,
        variables={"code": "1234"} if variables is None else variables,
        reference=reference,
    )


@pytest.fixture
def aliyun(fake_aliyun) -> AliyunSmsProvider:
    return provider_by_name("aliyun")


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_a_batch_goes_out_in_one_signed_send_batch_sms_call(fake_aliyun, settings, version):
    settings.ALIYUN_SIGNATURE_VERSION = version
    provider = AliyunSmsProvider()
    numbers = ["13800000001", "13800000002", "13800000003"]
    results = provider.send_many([_message(n) for n in numbers])
    assert [r.outcome for r in results] == ["sent"] * 3
    assert fake_aliyun.calls("SendBatchSms") == 1 and len(fake_aliyun.messages) == 3
    stored = fake_aliyun.messages
    assert [m.phone for m in stored] == numbers and {m.out_id for m in stored} == {"rREF1"}
    assert stored[0].content == "【阿里云测试】您的验证码为1234，5分钟内有效。"
    assert results[1].provider_message_id == "rREF1/13800000002"  # our reference and the number


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_one_message_uses_send_sms(fake_aliyun, settings, version):
    settings.ALIYUN_SIGNATURE_VERSION = version
    (result,) = AliyunSmsProvider().send_many(
        [_message("13800000009", template="SMS_200", variables={"order": "A 1+2*"})]
    )
    assert result.outcome == "sent" and fake_aliyun.calls("SendSms") == 1
    assert fake_aliyun.messages[0].content == "【阿里云测试】订单A 1+2*已发货。"  # encoded and signed right


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_a_wrong_secret_is_our_configuration_not_the_message(fake_aliyun, settings, version):
    settings.ALIYUN_SIGNATURE_VERSION, settings.ALIYUN_ACCESS_KEY_SECRET = version, "not-the-secret"
    (result,) = AliyunSmsProvider().send_many([_message("13800000001")])
    assert (result.outcome, result.provider_fault) == ("failed", True)
    assert "SignatureDoesNotMatch" in result.error and fake_aliyun.messages == []


def test_free_text_cannot_go_through_aliyun(aliyun, fake_aliyun):
    (result,) = aliyun.send_many([_message("13800000001", template="")])
    assert (result.outcome, result.provider_fault) == ("failed", True)
    assert "templates only" in result.error and fake_aliyun.requests == []


@pytest.mark.parametrize(
    ("code", "outcome", "provider_fault"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", "retry", False),
        ("Throttling.User", "retry", False),
        ("isv.AMOUNT_NOT_ENOUGH", "failed", True),
        ("isv.SMS_TEMPLATE_ILLEGAL", "failed", True),
        ("isp.SYSTEM_ERROR", "unknown", False),
        ("isv.MOBILE_NUMBER_ILLEGAL", "failed", False),
        ("isv.SMS_CONTENT_ILLEGAL", "failed", False),
    ],
)
def test_error_codes_map_to_retry_account_unknown_or_refused(
    aliyun, fake_aliyun, code, outcome, provider_fault
):
    fake_aliyun.account_code = code
    (result,) = aliyun.send_many([_message("13800000001")])
    assert (result.outcome, result.provider_fault) == (outcome, provider_fault)
    assert code in result.error


def test_a_503_is_retried_and_an_answer_that_never_comes_is_unknown(aliyun, fake_aliyun):
    fake_aliyun.faults.http_503 = 1.0
    assert aliyun.send_many([_message("13800000001")])[0].outcome == "retry"
    fake_aliyun.faults.http_503 = 0.0
    fake_aliyun.faults.slow, fake_aliyun.faults.slow_seconds = 1.0, 1.5  # stored, then past the read timeout
    assert aliyun.send_many([_message("13800000002")])[0].outcome == "unknown"
    assert len(fake_aliyun.messages) == 1


def test_different_templates_in_one_part_go_out_in_one_call_each(aliyun, fake_aliyun):
    results = aliyun.send_many(
        [_message("13800000001"), _message("13800000002", template="SMS_200", variables={"order": "9"}),
         _message("13800000003")]
    )  # fmt: skip
    assert [r.outcome for r in results] == ["sent"] * 3
    assert (fake_aliyun.calls("SendBatchSms"), fake_aliyun.calls("SendSms")) == (1, 1)


def test_receipts_parse_to_reports_and_bad_shapes_are_refused(aliyun, fake_aliyun):
    aliyun.send_many([_message("13800000001"), _message("13800000002")])
    first, second = fake_aliyun.messages
    body = fake_aliyun.report([first], delivered=True, push=False) + fake_aliyun.report(
        [second], delivered=False, err_code="MK:0005", push=False
    )
    reports = aliyun.parse_receipts(json.loads(json.dumps(body)))
    assert [(r.provider_message_id, r.status) for r in reports] == [
        ("rREF1/13800000001", "delivered"),
        ("rREF1/13800000002", "failed"),
    ]
    assert "MK:0005" in reports[1].error and reports[0].at is not None
    for bad in [
        {"biz_id": "x"},
        [1],
        [{"biz_id": "x", "phone_number": "1"}],
        [{"biz_id": 1, "phone_number": "1", "success": True}],
    ]:
        with pytest.raises(InvalidReceipt):
            aliyun.parse_receipts(bad)
