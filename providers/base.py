"""The provider interface. Nothing outside `providers/` knows a provider's wire format.

A provider takes a list of messages and returns one `SendResult` per message, in order.
A failure of the whole call is a `ProviderError`. Providers never retry: retrying belongs
to the Celery task, which knows whether a second attempt could send a message twice.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class OutgoingMessage:
    log_id: str
    tenant_id: str
    channel: str
    recipient: str
    subject: str
    body: str
    provider_template_id: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    unsubscribe_url: str = ""
    # Sent along where the gateway echoes it (SUBMAIL's `tag`), so a message whose outcome
    # is unknown can be found again. Shared by every message of one provider call.
    reference: str = ""
    # Push: the data map (strings) and deep link sent with the notification; the title is
    # `subject`, the text `body`, and `recipient` the device id.
    data: dict[str, str] = field(default_factory=dict)
    link: str = ""
    # Push: where the device is at its push service (`token`; Web Push also `p256dh`, `auth`).
    target: dict[str, str] = field(default_factory=dict)


def push_notification_json(*, title: str, body: str, data: dict[str, str], link: str, log_id: str) -> bytes:
    """A push notification as the app receives it (the Web Push payload; FCM carries the same
    fields in its own shape). Bulk requests are size-checked on this."""
    notification = {"title": title, "body": body, "data": data, "link": link, "log_id": log_id}
    return json.dumps(notification, ensure_ascii=False, separators=(",", ":")).encode()


class Outcome(StrEnum):
    SENT = "sent"  # the provider accepted it
    FAILED = "failed"  # the provider refused it
    RETRY = "retry"  # the provider surely never received it; safe to send again
    UNKNOWN = "unknown"  # it may have gone out: never resent blindly, reconciled where possible


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None
    response: str | None = None
    fee: int | None = None  # billed units, when the provider says
    # FAILED because of our account or configuration at this provider (credentials, an
    # unapproved template, no balance), not the message: another provider may send it.
    provider_fault: bool = False
    # FAILED because the recipient no longer exists at the provider (an uninstalled app's
    # push token, an expired Web Push subscription): stop sending there.
    target_gone: bool = False
    # RETRY: the provider asked us to wait this many seconds (Retry-After) before trying again.
    retry_after: int | None = None

    @classmethod
    def sent(cls, provider_message_id: str | None, response: str | None = None, fee: int | None = None):
        return cls(Outcome.SENT, provider_message_id=provider_message_id, response=response, fee=fee)

    @classmethod
    def failed(
        cls,
        error: str,
        response: str | None = None,
        *,
        provider_fault: bool = False,
        target_gone: bool = False,
    ):
        return cls(
            Outcome.FAILED,
            error=error,
            response=response,
            provider_fault=provider_fault,
            target_gone=target_gone,
        )

    @classmethod
    def retry(cls, error: str, response: str | None = None, *, after: int | None = None):
        return cls(Outcome.RETRY, error=error, response=response, retry_after=after)

    @classmethod
    def unknown(cls, reason: str, response: str | None = None):
        return cls(Outcome.UNKNOWN, error=OUTCOME_UNKNOWN.format(reason=reason), response=response)


class ProviderError(Exception):
    """The whole call failed.

    `permanent`: sending the same messages again would fail the same way (bad credentials,
    rejected content), so fail them. Otherwise the provider surely did not receive the
    request (connection refused, DNS) and the task may retry. `outcome_unknown`: the
    request may have gone through (read timeout), so the messages are failed and never
    resent automatically. `provider_fault`: permanent here because of our account or
    configuration at this provider; another provider may take the messages.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        outcome_unknown: bool = False,
        provider_fault: bool = False,
        response: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.permanent = permanent or outcome_unknown
        self.outcome_unknown = outcome_unknown
        self.provider_fault = provider_fault
        self.response = response

    def as_result(self) -> SendResult:
        if self.outcome_unknown:
            return SendResult(Outcome.UNKNOWN, error=self.message, response=self.response)
        if self.permanent:
            return SendResult.failed(self.message, self.response, provider_fault=self.provider_fault)
        return SendResult.retry(self.message, self.response)


class InvalidReceipt(ValueError):
    """A pushed receipt (webhook) whose fields are not what the provider sends: a 400, not a 500."""


OUTCOME_UNKNOWN = (
    "Outcome unknown: the provider may have accepted the message ({reason}). "
    "Not resent automatically, so nobody receives it twice; retry it explicitly if needed."
)


@dataclass(frozen=True)
class StatusReport:
    """A delivery outcome the provider reported for one of its message ids."""

    provider_message_id: str
    status: str  # "sent", "delivered" or "failed"
    at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class Reply:
    """A message a recipient sent back."""

    address: str
    content: str


@dataclass(frozen=True)
class SentRecord:
    """The gateway's own record of one message it accepted (for reconciliation)."""

    provider_message_id: str
    recipient: str  # normalised like our logs (E.164)
    texts: tuple[str, ...]  # the text as the gateway may spell it (with and without signature)
    template: str  # the gateway template it was sent with, or ""
    sent_at: datetime | None


@dataclass(frozen=True)
class ReportPage:
    reports: list[StatusReport]
    returned: int  # rows in this page, including ones without a final status yet
    total: int  # rows in the whole query window
    offset: int  # the offset the provider says it answered
    # The window (provider's own units) asked for and the one the answer says it covers; they
    # differ when the provider served a cached answer to an earlier query. None: not echoed.
    asked_window: tuple | None = None
    answered_window: tuple | None = None
    records: list[SentRecord] = field(default_factory=list)  # every accepted message in the page

    def answers(self, *, offset: int) -> bool:
        """True when this page answers the query just made, not a cached earlier one."""
        same_window = self.answered_window is None or self.answered_window == self.asked_window
        return same_window and self.offset == offset


class Provider:
    """Base class. `name` is what logs record as their provider."""

    name: str = ""
    channels: frozenset[str] = frozenset()
    max_batch_size: int = 100
    max_text_length: int | None = None  # the provider's own limit on the text it sends
    # True when the provider keeps records we can search (reports pages carrying `records`,
    # pushes carrying the reference): an unknown outcome is then reconciled, not given up.
    can_reconcile: bool = False
    # True for gateways that send approved templates only (Aliyun): a message needs the
    # template's code at this provider (`Template.provider_codes[name]`).
    templates_only: bool = False
    # Seconds between polls of `fetch_status_reports` (the gateway's rate limit); None: the
    # provider is not polled (it pushes, or keeps no reports).
    status_poll_interval: int | None = None

    def fetch_status_reports(self, *, start, end, offset: int, rows: int) -> "ReportPage":
        raise NotImplementedError

    # Unsigned pushes (receipts, replies) are accepted at a URL carrying this secret path
    # token; "" means the provider pushes nothing there. `push_ack` is the body it expects.
    push_token: str = ""
    push_ack: dict = {}

    def look_up(self, *, recipient: str, reference: str, handed_at: datetime) -> "SentRecord | None":
        """For providers searchable one message at a time (`can_reconcile` without report
        pages): the gateway's record of the message a call carrying `reference` sent to
        `recipient`, or None when it lists none. NotImplementedError: not searchable this way."""
        raise NotImplementedError

    def parse_receipts(self, body) -> list["StatusReport"]:
        """A pushed batch of delivery receipts; raises InvalidReceipt for a malformed one."""
        raise InvalidReceipt(f"{self.name} pushes no receipts here.")

    def parse_replies(self, body) -> list["Reply"]:
        """A pushed batch of replies from recipients (e.g. "TD" to unsubscribe)."""
        raise InvalidReceipt(f"{self.name} pushes no replies here.")

    def can_send(self, provider_codes: dict[str, str]) -> bool:
        return not self.templates_only or bool(provider_codes.get(self.name))

    @property
    def sms_signature(self) -> str:
        """The 【signature】 an SMS gateway requires first in every text ("" for none)."""
        return ""

    def text_as_sent(self, body: str) -> str:
        """The text the recipient gets, with anything the provider adds (the SMS signature,
        unless the text starts with one); length limits are checked on this, before anything
        is queued."""
        prefix = self.sms_signature
        return body if not prefix or body.startswith("【") else f"{prefix}{body}"

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        raise NotImplementedError

    def send_grouped(self, messages: list[OutgoingMessage], group_key, send_group) -> list[SendResult]:
        """For gateways whose one call sends one text or template to many: `group_key(message)`
        is the key of the call a message joins, or a SendResult that answers it without a call;
        `send_group(messages)` makes one call (a ProviderError answers all of its messages)."""
        results: dict[int, SendResult] = {}
        groups: dict = {}
        for index, message in enumerate(messages):
            key = group_key(message)
            if isinstance(key, SendResult):
                results[index] = key
            else:
                groups.setdefault(key, []).append(index)
        for indexes in groups.values():
            group = [messages[index] for index in indexes]
            try:
                answers = send_group(group)
            except ProviderError as exc:
                answers = [exc.as_result()] * len(group)
            results.update(zip(indexes, answers, strict=True))
        return [results[index] for index in range(len(messages))]
