"""A fake Aliyun SMS API (dysmsapi 2017-05-25) on 127.0.0.1 for tests and local runs.

Follows docs/ALIYUN.md: verifies signature V3 (`Authorization: ACS3-HMAC-SHA256 …`) and V2
(`Signature` query parameter) with its own code written from the documented algorithm (never
the client's signer), rejects clocks off by more than 15 minutes and reused nonces, and
answers SendSms, SendBatchSms (≤ 100 numbers) and QuerySendDetails in Aliyun's shapes, with
`Code` deciding success. Accepted messages are kept, can be flipped to delivered/failed and
pushed as HTTP batch receipts (a JSON array) to a receipt URL. Faults as in the SUBMAIL fake.

    .venv/bin/python -m tests.fakes.aliyun_server --port 9100
"""

import argparse
import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import requests

from tests.fakes.gateway import FakeGateway, serve_until_interrupted

CLOCK_WINDOW_SECONDS = 15 * 60
BEIJING = ZoneInfo("Asia/Shanghai")  # Aliyun's dates and times


def _beijing(timestamp: float, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromtimestamp(timestamp, BEIJING).strftime(fmt)


def _pop_encode_all(params: dict) -> str:
    """The documented equivalent of POP encoding: form-encode, then `+`→%20, `*`→%2A, %7E→~."""
    return urlencode(sorted(params.items())).replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def _pop_encode(value: str) -> str:
    return urlencode({"": value})[1:].replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def expected_v2_signature(method: str, params: dict, secret: str) -> str:
    signed = {key: value for key, value in params.items() if key != "Signature"}
    string_to_sign = "&".join([method, _pop_encode("/"), _pop_encode(_pop_encode_all(signed))])
    return base64.b64encode(
        hmac.new(f"{secret}&".encode(), string_to_sign.encode(), "sha1").digest()
    ).decode()


def expected_v3_signature(
    method: str, path: str, query: dict, headers: dict, signed: list[str], secret: str
) -> str:
    lines = [method, path, _pop_encode_all(query)]
    lines.append("".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed))
    lines += [";".join(signed), headers.get("x-acs-content-sha256", "")]
    canonical = "\n".join(lines)
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), to_sign.encode(), "sha256").hexdigest()


@dataclass
class StoredSms:
    biz_id: str
    phone: str
    sign_name: str
    template_code: str
    content: str
    out_id: str
    send_time: float
    status: int = 1  # 1 waiting for receipt, 2 failed, 3 delivered
    err_code: str = ""


class FakeAliyun(FakeGateway):
    def __init__(self, keys: dict[str, str], *, templates: dict[str, str] | None = None, seed: int = 7):
        super().__init__(seed=seed)
        self.keys = dict(keys)  # AccessKeyId → AccessKeySecret
        self.templates = dict(templates or {})  # TemplateCode → text with ${name}
        self.messages: list[StoredSms] = []
        self.requests: list[tuple[str, dict]] = []  # (action, params)
        self.account_code = ""  # a business Code every send answers with (balance, throttling…)
        self.receipt_url = ""
        self.clock_skew = 0
        self._nonces: set[str] = set()

    # --- what tests look at and change ---

    def deliveries(self) -> list[tuple[str, str]]:
        """(phone, content) of every message accepted, duplicates included."""
        return [(m.phone, m.content) for m in self.messages]

    def calls(self, action: str) -> int:
        return sum(1 for called, _ in self.requests if called == action)

    def report(self, messages: list[StoredSms], *, delivered: bool, err_code: str = "", push: bool = True):
        """Carrier receipts: flip messages and (by default) push them as one JSON array."""
        now = _beijing(time.time())
        for message in messages:
            message.status = 3 if delivered else 2
            message.err_code = "DELIVERED" if delivered else (err_code or "MK:0001")
        body = [self.receipt(message, report_time=now) for message in messages]
        return requests.post(self.receipt_url, json=body, timeout=10) if push else body

    @staticmethod
    def receipt(message: StoredSms, *, report_time: str) -> dict:
        return {
            "phone_number": message.phone,
            "send_time": _beijing(message.send_time),
            "report_time": report_time,
            "success": message.status == 3,
            "err_code": message.err_code,
            "err_msg": "用户接收成功" if message.status == 3 else "失败",
            "sms_size": "1",
            "biz_id": message.biz_id,
            "out_id": message.out_id,
        }

    # --- HTTP ---

    def handle(self, handler, raw: bytes):
        query = dict(parse_qsl(handler.path.partition("?")[2], keep_blank_values=True))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        method = handler.command
        authorization = headers.get("authorization", "")
        if authorization:
            action, error = headers.get("x-acs-action", ""), self._check_v3(method, handler, query, headers)
        else:
            action, error = query.get("Action", ""), self._check_v2(method, query)
        with self._lock:
            self.requests.append((action, query))
        if error:
            return 403 if error[0] == "SignatureDoesNotMatch" else 400, self._error(*error)
        routes = {
            "SendSms": self._send_sms,
            "SendBatchSms": self._send_batch_sms,
            "QuerySendDetails": self._query_send_details,
        }
        if action not in routes:
            return 404, self._error("InvalidAction.NotFound", f"Specified api is not found: {action}")
        if self.unavailable():
            return 503, self._error(
                "ServiceUnavailable", "The request has failed due to a temporary failure."
            )
        answer = self.faulty(handler, lambda: routes[action](query))
        return 200, answer

    @staticmethod
    def _error(code: str, message: str) -> dict:
        return {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper()}

    def _fresh(self, when: str, nonce: str) -> tuple[str, str] | None:
        try:
            sent = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
        if abs(sent - (time.time() + self.clock_skew)) > CLOCK_WINDOW_SECONDS:
            return "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        with self._lock:
            if not nonce or nonce in self._nonces:
                return "SignatureNonceUsed", "Specified signature nonce was used already."
            self._nonces.add(nonce)
        return None

    def _check_v3(self, method, handler, query, headers) -> tuple[str, str] | None:
        match = re.fullmatch(
            r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)",
            headers["authorization"],
        )
        if not match:
            return "IncompleteSignature", "The request signature does not conform to Aliyun standards."
        key_id, signed, signature = match.groups()
        if key_id not in self.keys:
            return "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        path = handler.path.partition("?")[0] or "/"
        names = signed.split(";")
        if names != sorted(names) or not {"host", "x-acs-action", "x-acs-date"} <= set(names):
            return "IncompleteSignature", "The request signature does not conform to Aliyun standards."
        if signature != expected_v3_signature(method, path, query, headers, names, self.keys[key_id]):
            return "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
        return self._fresh(headers.get("x-acs-date", ""), headers.get("x-acs-signature-nonce", ""))

    def _check_v2(self, method, query) -> tuple[str, str] | None:
        key_id = query.get("AccessKeyId", "")
        if key_id not in self.keys:
            return "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        if query.get("Signature") != expected_v2_signature(method, query, self.keys[key_id]):
            return "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
        return self._fresh(query.get("Timestamp", ""), query.get("SignatureNonce", ""))

    # --- actions ---

    def _render(self, template_code: str, params: dict) -> str | None:
        text = self.templates.get(template_code)
        if text is None:
            return None
        return re.sub(r"\$\{(\w+)\}", lambda m: str(params.get(m.group(1), "")), text)

    def _accept(self, phones, sign_names, template_code, params_list, out_id) -> dict:
        if self.account_code:
            return self._error(self.account_code, "account fault injected")
        for phone in phones:
            code = self.faults.error_numbers.get(phone)
            if code:
                return self._error(str(code), f"number {phone} refused")
        texts = []
        for params in params_list:
            if any(not isinstance(value, str) for value in params.values()):
                return self._error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
            text = self._render(template_code, params)
            if text is None:
                return self._error("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
            texts.append(text)
        biz_id = f"{int(time.time() * 1000)}{len(self.messages):06d}^0"
        now = time.time()
        with self._lock:
            for phone, sign_name, text in zip(phones, sign_names, texts, strict=True):
                self.messages.append(
                    StoredSms(biz_id, phone, sign_name, template_code, f"【{sign_name}】{text}", out_id, now)
                )
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": str(uuid.uuid4()).upper()}

    def _send_sms(self, query: dict) -> dict:
        phones = [p for p in query.get("PhoneNumbers", "").split(",") if p]
        if not phones or not query.get("SignName") or not query.get("TemplateCode"):
            return self._error("MissingParameter", "PhoneNumbers, SignName and TemplateCode are required.")
        if len(phones) > 1000:
            return self._error("isv.MOBILE_COUNT_OVER_LIMIT", "too many numbers")
        try:
            params = json.loads(query.get("TemplateParam") or "{}")
        except ValueError:
            return self._error("isv.INVALID_JSON_PARAM", "JSON参数不合法")
        return self._accept(
            phones, [query["SignName"]] * len(phones), query["TemplateCode"], [params] * len(phones),
            query.get("OutId", ""),
        )  # fmt: skip

    def _send_batch_sms(self, query: dict) -> dict:
        try:
            phones = json.loads(query.get("PhoneNumberJson", ""))
            sign_names = json.loads(query.get("SignNameJson", ""))
            params_list = json.loads(query.get("TemplateParamJson") or "null") or [{}] * len(phones)
        except ValueError:
            return self._error("isv.INVALID_JSON_PARAM", "JSON参数不合法")
        if not phones or not query.get("TemplateCode"):
            return self._error("MissingParameter", "PhoneNumberJson and TemplateCode are required.")
        if len(phones) > 100:
            return self._error("isv.MOBILE_COUNT_OVER_LIMIT", "at most 100 numbers per batch")
        if not (len(phones) == len(sign_names) == len(params_list)):
            return self._error("isv.INVALID_PARAMETERS", "arrays of different lengths")
        return self._accept(phones, sign_names, query["TemplateCode"], params_list, query.get("OutId", ""))

    def _query_send_details(self, query: dict) -> dict:
        phone, page_size = query.get("PhoneNumber", ""), int(query.get("PageSize") or 0)
        page = int(query.get("CurrentPage") or 0)
        if not phone or not query.get("SendDate") or not 1 <= page_size <= 50 or page < 1:
            return self._error("isv.INVALID_PARAMETERS", "PhoneNumber, SendDate, PageSize 1-50, CurrentPage")
        day = query["SendDate"]
        found = [
            m
            for m in self.messages
            if m.phone == phone
            and _beijing(m.send_time, "%Y%m%d") == day
            and (not query.get("BizId") or m.biz_id == query["BizId"])
        ]
        rows = [
            {
                "PhoneNum": m.phone,
                "SendStatus": m.status,
                "ErrCode": m.err_code,
                "TemplateCode": m.template_code,
                "Content": m.content,
                "SendDate": _beijing(m.send_time),
                "ReceiveDate": "",
                "OutId": m.out_id,
            }
            for m in found[(page - 1) * page_size : page * page_size]
        ]
        return {
            "Code": "OK",
            "Message": "OK",
            "RequestId": str(uuid.uuid4()).upper(),
            "TotalCount": str(len(found)),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows},
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--access-key-id", default="fake-key-id")
    parser.add_argument("--access-key-secret", default="fake-key-secret")
    args = parser.parse_args()
    fake = FakeAliyun({args.access_key_id: args.access_key_secret}).start(args.port)
    serve_until_interrupted(
        fake,
        f"Fake Aliyun SMS on {fake.url} ({args.access_key_id} / {args.access_key_secret}); Ctrl-C to stop.",
    )


if __name__ == "__main__":
    main()
