"""Aliyun SMS (dysmsapi 2017-05-25): the client, the provider, its error map and receipts.

Everything that knows Aliyun's wire format lives here and in `aliyun_signing.py`
(docs/ALIYUN.md). Aliyun sends approved templates only: a message must carry the template's
Aliyun TemplateCode (`Template.provider_codes["aliyun"]`), its variables as strings, and is
signed with ALIYUN_SMS_SIGN_NAME. Each call carries our reference as `OutId`, which Aliyun
echoes in receipts.
"""

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from django.conf import settings

from providers.aliyun_signing import canonical_query, v2_signature, v3_authorization
from providers.base import (
    OUTCOME_UNKNOWN,
    InvalidReceipt,
    OutgoingMessage,
    Provider,
    ProviderError,
    Reply,
    SendResult,
    SentRecord,
    StatusReport,
)
from providers.http import HttpTransport

logger = logging.getLogger(__name__)

API_VERSION = "2017-05-25"
SIGNATURE_VERSIONS = ("v3", "v2")
USER_AGENT = "authms-communication/1.0 (+aliyun)"

# --- Error codes (docs/ALIYUN.md §8) ------------------------------------------------------

# Nothing was accepted and waiting may help (frequency limits, throttling, a clock or nonce
# the gateway refused): the messages are retried on the schedule, or go to the next provider.
RETRY_CODES = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "ServiceUnavailable",
        "InvalidTimeStamp.Expired",
        "SignatureNonceUsed",
    }
)
# Our account or configuration at Aliyun is wrong (credentials, unapproved template or
# signature, balance, caps): nothing was accepted, the same request will keep failing here,
# another provider may succeed. Logged as errors for an operator.
ACCOUNT_CODES = frozenset(
    {
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "Forbidden",
        "Forbidden.RAM",
        "Forbidden.RiskControl",
        "isp.RAM_PERMISSION_DENY",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SIGN_STATE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
        "isv.EXTEND_CODE_ERROR",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
        "isv.DENY_IP_RANGE",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.DAY_LIMIT_CONTROL",
        "isv.MONTH_LIMIT_CONTROL",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.PRODUCT_UNSUBSCRIBE",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
    }
)
# Aliyun's own failure after the request arrived: it may have sent ("check the receipt
# before resending").
UNKNOWN_CODES = frozenset({"isp.SYSTEM_ERROR", "InternalError"})
# Everything else (isv.MOBILE_NUMBER_ILLEGAL, isv.TEMPLATE_MISSING_PARAMETERS,
# isv.INVALID_JSON_PARAM, isv.SMS_CONTENT_ILLEGAL, …) refuses these messages for good.


def describe(answer: dict) -> str:
    return f"Aliyun error {answer.get('Code')}: {answer.get('Message') or 'no message'}."


def answer_error(answer: dict, raw: str) -> ProviderError:
    """A non-OK `Code` → the ProviderError the dispatcher understands."""
    code, message = str(answer.get("Code") or ""), describe(answer)
    if code in RETRY_CODES:
        return ProviderError(message, permanent=False, response=raw)
    if code in ACCOUNT_CODES:
        logger.error("Aliyun refused our account or configuration: %s", message)
        return ProviderError(message, permanent=True, provider_fault=True, response=raw)
    if code in UNKNOWN_CODES:
        return ProviderError(message, permanent=True, outcome_unknown=True, response=raw)
    return ProviderError(message, permanent=True, response=raw)


# --- The client ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AliyunConfig:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    base_url: str
    signature_version: str
    connect_timeout: float
    read_timeout: float

    @classmethod
    def from_settings(cls):
        if settings.ALIYUN_SIGNATURE_VERSION not in SIGNATURE_VERSIONS:
            raise ProviderError(
                "ALIYUN_SIGNATURE_VERSION must be v3 or v2.", permanent=True, provider_fault=True
            )
        if not (
            settings.ALIYUN_ACCESS_KEY_ID
            and settings.ALIYUN_ACCESS_KEY_SECRET
            and settings.ALIYUN_SMS_SIGN_NAME
        ):
            raise ProviderError(
                "ALIYUN_ACCESS_KEY_ID, ALIYUN_ACCESS_KEY_SECRET and ALIYUN_SMS_SIGN_NAME are not configured.",
                permanent=True,
                provider_fault=True,
            )
        return cls(
            access_key_id=settings.ALIYUN_ACCESS_KEY_ID,
            access_key_secret=settings.ALIYUN_ACCESS_KEY_SECRET,
            sign_name=settings.ALIYUN_SMS_SIGN_NAME,
            base_url=settings.ALIYUN_SMS_BASE_URL.rstrip("/"),
            signature_version=settings.ALIYUN_SIGNATURE_VERSION,
            connect_timeout=settings.ALIYUN_CONNECT_TIMEOUT,
            read_timeout=settings.ALIYUN_READ_TIMEOUT,
        )


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AliyunClient:
    """`POST /` with the action's parameters in the query string, signed V3 or V2; one
    helper for every call, through the shared transport rule. Never retries."""

    def __init__(self, config: AliyunConfig, session: requests.Session | None = None):
        self.config = config
        session = session or requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        self.transport = HttpTransport(
            name="Aliyun",
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            session=session,
        )

    def call(self, action: str, params: dict[str, str]) -> dict:
        params = {name: value for name, value in params.items() if value not in (None, "")}
        if self.config.signature_version == "v3":
            query, headers = params, self._v3_headers(action, params)
        else:
            query, headers = self._v2_query(action, params), {}
        response = self.transport.request(
            "POST", f"{self.config.base_url}/?{canonical_query(query)}", headers=headers
        )
        answer = self.transport.json(response)
        if not isinstance(answer, dict):
            raise ProviderError(
                OUTCOME_UNKNOWN.format(reason="an Aliyun answer that is not an object"),
                permanent=True,
                outcome_unknown=True,
                response=response.text[:2048],
            )
        if answer.get("Code") != "OK":
            raise answer_error(answer, response.text[:4096])
        return answer

    def _v3_headers(self, action: str, params: dict[str, str]) -> dict[str, str]:
        empty_body = hashlib.sha256(b"").hexdigest()
        signed = {
            "host": urlsplit(self.config.base_url).netloc,
            "x-acs-action": action,
            "x-acs-version": API_VERSION,
            "x-acs-date": _utc_now(),
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "x-acs-content-sha256": empty_body,
        }
        authorization = v3_authorization(
            method="POST",
            path="/",
            query=params,
            headers=signed,
            payload_sha256=empty_body,
            access_key_id=self.config.access_key_id,
            access_key_secret=self.config.access_key_secret,
        )
        return {**{k: v for k, v in signed.items() if k != "host"}, "Authorization": authorization}

    def _v2_query(self, action: str, params: dict[str, str]) -> dict[str, str]:
        query = {
            **params,
            "AccessKeyId": self.config.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": _utc_now(),
            "Version": API_VERSION,
        }
        query["Signature"] = v2_signature("POST", query, self.config.access_key_secret)
        return query


# --- The provider -------------------------------------------------------------------------


def aliyun_number(e164: str) -> str:
    """Mainland numbers as 11 digits; others as country code and number, without `+`."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


def message_id(out_id: str, phone: str) -> str:
    """Our id for one message: the call's OutId (our reference, known before the call) and the
    number. Receipts and QuerySendDetails rows carry both; a BizId names a whole batch and is
    absent from QuerySendDetails, so it is kept in the stored answer only."""
    return f"{out_id}/{phone}"


CHINA = ZoneInfo("Asia/Shanghai")  # Aliyun's dates and times are Beijing time


class AliyunSmsProvider(Provider):
    channels = frozenset({"sms"})
    templates_only = True
    can_reconcile = True  # QuerySendDetails finds a message by number, day and our OutId
    push_ack = {"code": 0, "msg": "接收成功"}  # anything else makes Aliyun push again (1, 5, 10 min)

    def __init__(self):
        self.max_batch_size = min(settings.ALIYUN_CHUNK_SIZE, 100)  # SendBatchSms takes ≤ 100

    @cached_property
    def client(self) -> AliyunClient:
        return AliyunClient(AliyunConfig.from_settings())

    @property
    def account(self) -> str:
        return settings.ALIYUN_ACCESS_KEY_ID

    @property
    def push_token(self) -> str:
        """Aliyun's HTTP pushes are unsigned: the URL's secret segment is what guards them."""
        return settings.ALIYUN_RECEIPT_TOKEN

    @property
    def sms_signature(self) -> str:
        return f"【{settings.ALIYUN_SMS_SIGN_NAME}】" if settings.ALIYUN_SMS_SIGN_NAME else ""

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        def call_for(message: OutgoingMessage):
            return message.provider_template_id or SendResult.failed(
                "Aliyun sends approved templates only; this message has no Aliyun template code.",
                provider_fault=True,
            )

        return self.send_grouped(messages, call_for, self._send_group)

    def _send_group(self, group: list[OutgoingMessage]) -> list[SendResult]:
        template_code = group[0].provider_template_id
        phones = [aliyun_number(message.recipient) for message in group]
        variables = [{name: str(value) for name, value in message.variables.items()} for message in group]
        sign_name = self.client.config.sign_name
        out_id = group[0].reference
        if len(group) == 1:
            answer = self.client.call(
                "SendSms",
                {
                    "PhoneNumbers": phones[0],
                    "SignName": sign_name,
                    "TemplateCode": template_code,
                    "TemplateParam": json.dumps(variables[0], ensure_ascii=False) if variables[0] else "",
                    "OutId": out_id,
                },
            )
        else:
            answer = self.client.call(
                "SendBatchSms",
                {
                    "PhoneNumberJson": json.dumps(phones),
                    "SignNameJson": json.dumps([sign_name] * len(group), ensure_ascii=False),
                    "TemplateCode": template_code,
                    "TemplateParamJson": json.dumps(variables, ensure_ascii=False) if any(variables) else "",
                    "OutId": out_id,
                },
            )
        raw = json.dumps(answer, ensure_ascii=False)
        name = out_id or str(answer.get("BizId") or "")
        if not name:
            return [SendResult.unknown("Aliyun answered OK without a BizId", response=raw)] * len(group)
        return [SendResult.sent(message_id(name, phone), response=raw) for phone in phones]

    # --- reconciliation ---

    def look_up(self, *, recipient: str, reference: str, handed_at: datetime) -> SentRecord | None:
        """QuerySendDetails for the number on the hand-over's (Beijing) day: the row whose OutId
        is our reference, or None when Aliyun lists no such message (yet)."""
        day = handed_at.astimezone(CHINA)
        phone = aliyun_number(recipient)
        page = 1
        while True:
            answer = self.client.call(
                "QuerySendDetails",
                {
                    "PhoneNumber": phone,
                    "SendDate": day.strftime("%Y%m%d"),
                    "PageSize": "50",
                    "CurrentPage": str(page),
                },
            )
            rows = ((answer.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO")) or []
            for row in rows if isinstance(rows, list) else []:
                if isinstance(row, dict) and row.get("OutId") == reference:
                    return SentRecord(
                        message_id(reference, phone), recipient, (str(row.get("Content") or ""),),
                        str(row.get("TemplateCode") or ""), _china_time(row.get("SendDate")),
                    )  # fmt: skip
            if len(rows) < 50 or page * 50 >= _int(answer.get("TotalCount")):
                return None
            page += 1

    # --- receipts ---

    def parse_receipts(self, body) -> list[StatusReport]:
        """Aliyun's HTTP batch receipts: a JSON array of SmsReport objects."""
        if not isinstance(body, list):
            raise InvalidReceipt("Aliyun receipts are a JSON array.")
        reports = []
        for item in body:
            if not isinstance(item, dict):
                raise InvalidReceipt("Each receipt is an object.")
            biz_id, phone, success = item.get("biz_id"), item.get("phone_number"), item.get("success")
            if not (isinstance(biz_id, str) and biz_id and isinstance(phone, str) and phone):
                raise InvalidReceipt("A receipt needs biz_id and phone_number.")
            if not isinstance(success, bool):
                raise InvalidReceipt("A receipt's success must be true or false.")
            code, text = str(item.get("err_code") or ""), str(item.get("err_msg") or "")
            reports.append(
                StatusReport(
                    message_id(str(item.get("out_id") or biz_id), phone),
                    "delivered" if success else "failed",
                    at=_china_time(item.get("report_time")),
                    error=None if success else f"Aliyun receipt {code}: {text}".strip(),
                )
            )
        return reports

    def parse_replies(self, body) -> list[Reply]:
        """SmsUp pushes: a JSON array of {phone_number, content, send_time, sign_name, …}."""
        if not isinstance(body, list):
            raise InvalidReceipt("Aliyun replies are a JSON array.")
        replies = []
        for item in body:
            phone, content = (
                (item.get("phone_number"), item.get("content")) if isinstance(item, dict) else (0, 0)
            )
            if not (isinstance(phone, str) and phone and isinstance(content, str)):
                raise InvalidReceipt("A reply needs phone_number and content.")
            replies.append(Reply(address=phone, content=content))
        return replies


def _china_time(value) -> datetime | None:
    """Aliyun's times are Beijing time, `yyyy-MM-dd HH:mm:ss`; unreadable is None (now)."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        return None


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
