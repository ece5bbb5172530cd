"""SUBMAIL SMS: signing, the HTTP client, the provider, status reports and SUBHOOK parsing.

Everything that knows SUBMAIL's wire format lives here (docs/SUBMAIL.md). Outside this
module the rest of the service sees `SendResult`s and `StatusReport`s only.
"""

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import requests
from django.conf import settings

from providers.base import (
    InvalidReceipt,
    OutgoingMessage,
    Provider,
    ProviderError,
    ReportPage,
    SendResult,
    SentRecord,
    StatusReport,
)
from providers.http import HttpTransport

logger = logging.getLogger(__name__)

USER_AGENT = "authms-communication/1.0 (+submail)"
SIGN_TYPES = ("normal", "md5", "sha1")
# Fields that never take part in the signature, and those `sign_version=2` leaves out.
ALWAYS_UNSIGNED = frozenset({"signature", "tag"})
UNSIGNED_IN_V2 = frozenset({"content", "vars", "multi"})

# --- Error codes --------------------------------------------------------------------------

# Codes where the whole request can never succeed with these settings: fail and shout.
CREDENTIAL_CODES = {101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 116, 119}
# Codes where nothing was sent and waiting may help: keep the messages pending, stop the batch.
STOP_AND_RETRY_CODES = {151, 152, 901, 902, 903, 904, 905}
TIMESTAMP_CODES = {151, 152}  # our idea of SUBMAIL's clock is off: ask it again

ERROR_MESSAGES = {
    101: "Incorrect SUBMAIL APP ID",
    102: "This SUBMAIL app has been disabled",
    103: "SUBMAIL developer identity is not verified",
    104: "SUBMAIL developer identity changed and is not verified",
    105: "The SUBMAIL account has expired",
    106: "The SUBMAIL account has been disabled",
    107: "Invalid sign_type",
    108: "Invalid signature (check SUBMAIL_APPKEY and SUBMAIL_SIGN_TYPE)",
    109: "Invalid appkey",
    110: "Invalid sign_type",
    111: "Empty signature",
    112: "The app's subscription system is disabled",
    113: "This server's IP is not on the SUBMAIL app's whitelist",
    114: "The number is on the account's blocklist",
    115: "Too many messages to this number; SUBMAIL's per-number frequency limit",
    116: "The SMS signature 【…】 belongs to another app",
    117: "SMS template error",
    118: "SMS template error",
    119: "Permission denied by SUBMAIL",
    120: "SMS template error",
    151: "Timestamp error",
    152: "Invalid timestamp (the request must reach SUBMAIL within 6 s of it)",
    251: "Incorrect recipient number",
    252: "Incorrect recipient number",
    253: "The recipient has unsubscribed",
    305: "Project (template) id is empty",
    306: "Invalid project (template) id",
    307: "Malformed JSON in vars or multi",
    310: "Tag longer than 32 characters",
    401: "The SMS signature 【…】 is empty",
    402: "The SMS signature is longer than 40 characters",
    403: "The SMS content is empty",
    404: "Signature and content together exceed 1,000 characters",
    405: "The content contains the banned word $var",
    406: "Project (template) id is empty",
    407: "Invalid project (template) id",
    408: "An identical message was already sent to this number",
    409: "The template is under review",
    410: "Empty or invalid multi value",
    411: "The SMS signature must be in 【】 and 2–10 characters",
    412: "The SMS signature must be in 【】 and 2–10 characters",
    413: "The SMS signature must be in 【】 and 2–10 characters",
    414: "The SMS content is empty",
    415: "The SMS content is longer than 1,000 characters",
    416: "The SMS title is longer than 64 characters",
    417: "The template id is empty",
    418: "The template does not exist",
    419: "The SMS content is empty",
    420: "No approved template matches this content (submitted for review)",
    422: "The template is longer than 255 characters",
    901: "The daily sending quota is used up",
    902: "Not enough balance",
    903: "Not enough SMS credit",
    904: "Not enough money credit",
    905: "Not enough transactional SMS credit",
}


def _code(value) -> int | None:
    """SUBMAIL sends codes as ints or strings ("252"); both mean the same."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def describe_error(answer: dict) -> str:
    code = _code(answer.get("code"))
    known = ERROR_MESSAGES.get(code)
    detail = answer.get("msg") or ""
    text = known or detail or "Unknown SUBMAIL error"
    if known and detail and detail.lower() not in known.lower():
        text = f"{known} ({detail})"
    return f"SUBMAIL error {answer.get('code')}: {text}."


def request_error(answer: dict, raw: str) -> ProviderError:
    """A request-level error object → the ProviderError the dispatcher understands."""
    code = _code(answer.get("code"))
    message = describe_error(answer)
    if code in STOP_AND_RETRY_CODES:
        return ProviderError(message, permanent=False, response=raw)
    if code in CREDENTIAL_CODES:
        logger.error("SUBMAIL refused our credentials or account: %s", message)
        return ProviderError(message, permanent=True, provider_fault=True, response=raw)
    return ProviderError(message, permanent=True, response=raw)


# --- Signing and the one HTTP helper ------------------------------------------------------


def sign(params: dict[str, str], *, appid: str, appkey: str, sign_type: str) -> str:
    """The `signature` value for a request (docs/SUBMAIL.md §1 and §6).

    normal: the appkey itself. md5/sha1: hex digest of
    appid + appkey + "k1=v1&k2=v2…" (keys sorted, raw values) + appid + appkey, over every
    parameter except `signature` and `tag`, and except content/vars/multi when
    `sign_version` is "2".
    """
    if sign_type == "normal":
        return appkey
    excluded = ALWAYS_UNSIGNED | (UNSIGNED_IN_V2 if str(params.get("sign_version")) == "2" else frozenset())
    joined = "&".join(f"{key}={params[key]}" for key in sorted(params) if key not in excluded)
    digest = hashlib.md5 if sign_type == "md5" else hashlib.sha1
    return digest(f"{appid}{appkey}{joined}{appid}{appkey}".encode()).hexdigest()


@dataclass(frozen=True)
class SubmailConfig:
    appid: str
    appkey: str
    sign_type: str
    base_url: str
    connect_timeout: float
    read_timeout: float
    signature: str  # the 【sign】 prefix

    @classmethod
    def from_settings(cls):
        if settings.SUBMAIL_SIGN_TYPE not in SIGN_TYPES:
            raise ProviderError(f"SUBMAIL_SIGN_TYPE must be one of {', '.join(SIGN_TYPES)}.", permanent=True)
        if not settings.SUBMAIL_APPID or not settings.SUBMAIL_APPKEY:
            raise ProviderError("SUBMAIL_APPID and SUBMAIL_APPKEY are not configured.", permanent=True)
        return cls(
            appid=settings.SUBMAIL_APPID,
            appkey=settings.SUBMAIL_APPKEY,
            sign_type=settings.SUBMAIL_SIGN_TYPE,
            base_url=settings.SUBMAIL_BASE_URL.rstrip("/"),
            connect_timeout=settings.SUBMAIL_CONNECT_TIMEOUT,
            read_timeout=settings.SUBMAIL_READ_TIMEOUT,
            signature=settings.SUBMAIL_SIGNATURE,
        )


class SubmailClient:
    """One method per endpoint; every call goes through `_call`, the single HTTP helper.

    The client never retries: whether a second attempt could send an SMS twice is the
    dispatcher's decision, made from the ProviderError it gets.
    """

    CLOCK_REFRESH_SECONDS = 600

    def __init__(self, config: SubmailConfig, session: requests.Session | None = None):
        self.config = config
        session = session or requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        self.transport = HttpTransport(
            name="SUBMAIL",
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            session=session,
        )
        self._clock_offset: float | None = None
        self._clock_checked_at = 0.0
        self._clock_lock = threading.Lock()

    # Timestamps come from SUBMAIL's clock (requests must arrive within 6 s of it); one
    # /service/timestamp call every ten minutes keeps the local offset. It is an auxiliary
    # call: its failure leaves the messages retryable, never "outcome unknown".
    def server_timestamp(self) -> int:
        answer = self._call("GET", "service/timestamp", None, auxiliary=True)
        try:
            return int(answer["timestamp"])
        except (KeyError, TypeError, ValueError):
            raise ProviderError("SUBMAIL's clock answered without a timestamp.", permanent=False) from None

    def _timestamp(self) -> str:
        with self._clock_lock:
            if (
                self._clock_offset is None
                or time.monotonic() - self._clock_checked_at > self.CLOCK_REFRESH_SECONDS
            ):
                self._clock_offset = self.server_timestamp() - time.time()
                self._clock_checked_at = time.monotonic()
            return str(int(time.time() + self._clock_offset))

    def signed(self, params: dict) -> dict:
        body = {"appid": self.config.appid, **params}
        if self.config.sign_type != "normal":
            body.update(timestamp=self._timestamp(), sign_type=self.config.sign_type, sign_version="2")
        body["signature"] = sign(
            body, appid=self.config.appid, appkey=self.config.appkey, sign_type=self.config.sign_type
        )
        return body

    def _call(self, method: str, path: str, params: dict | None, *, auxiliary: bool = False):
        """Call one endpoint through the transport rule (providers/http.py); return the JSON
        answer, or raise the ProviderError SUBMAIL's error object maps to."""
        response = self.transport.request(
            method, f"{self.config.base_url}/{path}", json=params, auxiliary=auxiliary
        )
        answer = self.transport.json(response, auxiliary=auxiliary)
        if isinstance(answer, dict) and answer.get("status") == "error":
            if _code(answer.get("code")) in TIMESTAMP_CODES:
                with self._clock_lock:
                    self._clock_offset = None
            raise request_error(answer, response.text[:4096])
        return answer

    def send(self, *, to: str, content: str, tag: str | None = None) -> dict:
        return self._call("POST", "sms/send", self.signed(_without_none(to=to, content=content, tag=tag)))

    def xsend(self, *, to: str, project: str, variables: dict, tag: str | None = None) -> dict:
        params = _without_none(
            to=to, project=project, vars=json.dumps(variables, ensure_ascii=False), tag=tag
        )
        return self._call("POST", "sms/xsend", self.signed(params))

    def multisend(self, *, content: str, multi: list[dict], tag: str | None = None) -> list[dict]:
        params = _without_none(content=content, multi=json.dumps(multi, ensure_ascii=False), tag=tag)
        return self._call("POST", "sms/multisend", self.signed(params))

    def multixsend(self, *, project: str, multi: list[dict], tag: str | None = None) -> list[dict]:
        params = _without_none(project=project, multi=json.dumps(multi, ensure_ascii=False), tag=tag)
        return self._call("POST", "sms/multixsend", self.signed(params))

    def log(self, *, start_date: int, end_date: int, rows: int, offset: int, **filters) -> dict:
        params = {
            "start_date": str(start_date),
            "end_date": str(end_date),
            "rows": str(rows),
            "offset": str(offset),
        }
        params.update({key: str(value) for key, value in filters.items() if value is not None})
        return self._call("POST", "sms/log", self.signed(params))


def _without_none(**params) -> dict:
    return {key: value for key, value in params.items() if value is not None}


# --- The provider -------------------------------------------------------------------------


def national_number(e164: str) -> str | None:
    """SUBMAIL's domestic API takes mainland numbers without +86."""
    if e164.startswith("+86") and e164[3:].isdigit():
        return e164[3:]
    return None


def _result_from(item: dict) -> SendResult:
    raw = json.dumps(item, ensure_ascii=False)
    if isinstance(item, dict) and item.get("status") == "success" and item.get("send_id"):
        return SendResult.sent(item["send_id"], response=raw, fee=_code(item.get("fee")))
    return SendResult.failed(describe_error(item if isinstance(item, dict) else {}), response=raw)


class SubmailSmsProvider(Provider):
    channels = frozenset({"sms"})
    can_reconcile = True  # sms/log lists what it accepted; SUBHOOK pushes echo our tag
    max_text_length = 1000  # signature included (error 404 otherwise)
    status_poll_interval = 60  # sms/log allows one call per minute per account

    def __init__(self):
        self.max_batch_size = settings.SUBMAIL_CHUNK_SIZE

    @cached_property
    def client(self) -> SubmailClient:
        return SubmailClient(SubmailConfig.from_settings())

    @property
    def account(self) -> str:
        return settings.SUBMAIL_APPID

    @property
    def sms_signature(self) -> str:
        """SUBMAIL requires the 【signature】 first."""
        return settings.SUBMAIL_SIGNATURE

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        def call_for(message: OutgoingMessage):
            if national_number(message.recipient) is None:
                return SendResult.failed(
                    "SUBMAIL's domestic SMS API only sends to mainland China (+86) numbers."
                )
            return (message.provider_template_id, "" if message.provider_template_id else message.body)

        return self.send_grouped(messages, call_for, self._send_group)

    def _send_group(self, group: list[OutgoingMessage]) -> list[SendResult]:
        first = group[0]
        project = first.provider_template_id
        if len(group) == 1:
            to = national_number(first.recipient)
            tag = first.reference or None
            answer = (
                self.client.xsend(to=to, project=project, variables=first.variables, tag=tag)
                if project
                else self.client.send(to=to, content=self.text_as_sent(first.body), tag=tag)
            )
            return [_result_from(answer)]
        multi = [{"to": national_number(m.recipient), "vars": m.variables if project else {}} for m in group]
        tag = first.reference or None
        answers = (
            self.client.multixsend(project=project, multi=multi, tag=tag)
            if project
            else self.client.multisend(content=self.text_as_sent(first.body), multi=multi, tag=tag)
        )
        if not isinstance(answers, list) or len(answers) != len(group):
            reason = "SUBMAIL answered a different number of results than messages sent"
            return [SendResult.unknown(reason, response=json.dumps(answers)[:2048])] * len(group)
        return [_result_from(item) for item in answers]

    def fetch_status_reports(self, *, start: datetime, end: datetime, offset: int, rows: int) -> ReportPage:
        answer = self.client.log(
            start_date=int(start.timestamp()), end_date=int(end.timestamp()), rows=rows, offset=offset
        )
        rows = [row for row in answer.get("data") or [] if isinstance(row, dict)]
        return ReportPage(
            reports=[report for row in rows if (report := _report_from_log_row(row))],
            records=[record for row in rows if (record := _record_from_log_row(row))],
            returned=len(answer.get("data") or []),
            total=_code(answer.get("total")) or 0,
            offset=_code(answer.get("offset")) or 0,
            answered_window=(_code(answer.get("start_date")), _code(answer.get("end_date"))),
            asked_window=(int(start.timestamp()), int(end.timestamp())),
        )


def _from_unix(value) -> datetime | None:
    """A report time from sms/log; a missing or impossible one is None (the update uses now)."""
    seconds = _code(value)
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds and 0 < seconds < _LATEST_PUSH_TIME else None


def _record_from_log_row(row: dict) -> SentRecord | None:
    send_id, to = row.get("sendID") or row.get("send_id"), str(row.get("to") or "")
    if not send_id or not to.isdigit():
        return None
    content, signature = str(row.get("sms_content") or ""), str(row.get("sms_signature") or "")
    return SentRecord(
        provider_message_id=str(send_id),
        recipient=f"+86{to}",
        texts=(content, f"{signature}{content}"),
        template=str(row.get("template_id") or ""),
        sent_at=_from_unix(row.get("send_at")),
    )


def _report_from_log_row(row: dict) -> StatusReport | None:
    send_id = row.get("sendID") or row.get("send_id")
    if not send_id:
        return None
    if row.get("status") == "delivered":
        return StatusReport(send_id, "delivered", at=_from_unix(row.get("report_at")))
    if row.get("status") == "dropped":
        reason = row.get("dropped_reason") or "no reason given"
        return StatusReport(
            send_id,
            "failed",
            at=_from_unix(row.get("report_at")),
            error=f"Not delivered: {reason} (carrier state {row.get('report_state') or 'unknown'}).",
        )
    return None  # "pending": no carrier report yet


# --- SUBHOOK ------------------------------------------------------------------------------

SUBHOOK_FIELD_MAX_LENGTH = 64  # tokens, signatures, send ids, event names, report codes
SUBHOOK_CONTENT_MAX_LENGTH = 2000  # the text of an `mo` reply
_LATEST_PUSH_TIME = 4_102_444_800  # 2100-01-01: anything later is not a real event time


def _subhook_field(data: Mapping, name: str, max_length: int = SUBHOOK_FIELD_MAX_LENGTH) -> str:
    """One pushed field as text ("" when absent); anything but a short string or integer is refused."""
    value = data.get(name)
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidReceipt(f"SUBHOOK field {name!r} must be a string of at most {max_length} characters.")
    return value


def subhook_credentials(data) -> tuple[str, str]:
    """(token, signature) of a push; the body must be an object of fields."""
    if not isinstance(data, Mapping):
        raise InvalidReceipt("A SUBHOOK body must be an object of fields.")
    return _subhook_field(data, "token"), _subhook_field(data, "signature")


def subhook_signature_valid(*, token: str, signature: str, key: str) -> bool:
    """SUBHOOK pushes carry signature = md5(token + key); compared in constant time."""
    if not (token and signature and key) or not signature.isascii():
        return False
    expected = hashlib.md5(f"{token}{key}".encode()).hexdigest()  # noqa: S324 - SUBMAIL's protocol
    return hmac.compare_digest(expected, signature.lower())


def _push_time(value: str) -> datetime | None:
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < _LATEST_PUSH_TIME:
        raise InvalidReceipt("SUBHOOK field 'timestamp' must be a UNIX time in seconds.")
    return datetime.fromtimestamp(int(value), tz=UTC)


@dataclass(frozen=True)
class SubhookEvent:
    event: str
    report: StatusReport | None = None  # delivery outcome, when the event carries one
    address: str = ""  # the phone number (mainland numbers without +86)
    content: str = ""  # the text of an `mo` reply
    tag: str = ""  # the reference our request carried

    @property
    def recipient(self) -> str:
        """The address as our logs store it (E.164)."""
        return f"+86{self.address}" if self.address.isdigit() else self.address


def parse_subhook(data: Mapping) -> SubhookEvent:
    """The event a verified push describes; InvalidReceipt when a field has the wrong shape."""
    event = _subhook_field(data, "events") or _subhook_field(data, "event")
    send_id = _subhook_field(data, "send_id")
    at = _push_time(_subhook_field(data, "timestamp"))
    report = None
    if send_id and event == "delivered":
        report = StatusReport(send_id, "delivered", at=at)
    elif send_id and event == "dropped":
        report = StatusReport(
            send_id,
            "failed",
            at=at,
            error=f"Not delivered (carrier report {_subhook_field(data, 'report') or 'unknown'}).",
        )
    elif send_id and event in ("sending", "request"):  # "request": SUBMAIL accepted the message
        report = StatusReport(send_id, "sent", at=at)
    return SubhookEvent(
        event=event,
        report=report,
        address=_subhook_field(data, "address"),
        content=_subhook_field(data, "content", SUBHOOK_CONTENT_MAX_LENGTH),
        tag=_subhook_field(data, "tag"),
    )
