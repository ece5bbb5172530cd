"""Email through an ESP's API with django-anymail (EMAIL_PROVIDER=anymail).

The ESP is the anymail backend named by EMAIL_BACKEND (`anymail.backends.postmark.EmailBackend`,
`…mailgun…`, `…amazon_ses…`), configured by ANYMAIL_* variables. Messages of a chunk with the
same subject and text (or the same ESP template) go out in one batch call: anymail's batch
send, one message per recipient, each with its own ESP message id (kept as the log's
`provider_message_id`, which the tracking webhooks report against). The recipient's
unsubscribe link travels as a per-recipient header and the log id as per-recipient metadata.
An ESP whose anymail backend has no batch sending gets one call per message instead.

Outcomes follow the shared transport rule (providers/http.py): a call that surely never left
or that the ESP did not process (429, 503) is retried; one that may have been taken (a read
timeout, another 5xx) is unknown; credentials refused stop this provider; anything else the
ESP refused fails the messages. Per recipient, anymail's `sent`/`queued`/`scheduled` are sent,
`rejected`/`invalid`/`failed` fail that message, `unknown` is unknown.
"""

from functools import cached_property

import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailRequestsAPIError,
    AnymailUnsupportedFeature,
)
from anymail.message import AnymailMessage
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import get_connection

from providers.base import OUTCOME_UNKNOWN, OutgoingMessage, Provider, ProviderError, SendResult
from providers.http import request_failure, status_failure

CREDENTIAL_STATUSES = frozenset({401, 403})
SENT_STATUSES = frozenset({"sent", "queued", "scheduled"})
REFUSALS = {
    "rejected": "The ESP refused the address (an earlier bounce or complaint, or its policy).",
    "invalid": "The ESP says the address is invalid.",
    "failed": "The ESP could not send the message.",
}


class AnymailEmailProvider(Provider):
    channels = frozenset({"email"})

    def __init__(self):
        self.max_batch_size = settings.EMAIL_ESP_CHUNK_SIZE

    @cached_property
    def esp_name(self) -> str:
        """The ESP as its backend calls itself ("Postmark"), for error texts."""
        return getattr(get_connection(), "esp_name", self.name)

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        occurrences: dict[tuple, int] = {}

        def batch_of(message: OutgoingMessage):
            # One batch per content; an address twice in a chunk goes into a second batch.
            content = (
                (message.provider_template_id,)
                if message.provider_template_id
                else (message.subject, message.body)
            )
            key = (*content, message.recipient.lower())
            occurrences[key] = occurrences.get(key, -1) + 1
            return (*content, occurrences[key])

        return self.send_grouped(messages, batch_of, self._send_batch)

    def _send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        try:
            return self._send(self._build(messages), messages)
        except ProviderError as exc:
            if not isinstance(exc.__cause__, AnymailUnsupportedFeature):
                raise
        # This ESP's backend has no batch sending (anymail refused before any call): one call
        # per message, the per-recipient data set on each message itself.
        results = []
        for message in messages:
            try:
                results += self._send(self._build_one(message), [message])
            except ProviderError as exc:
                results.append(exc.as_result())
        return results

    def _send(self, email: AnymailMessage, messages: list[OutgoingMessage]) -> list[SendResult]:
        try:
            email.send()
        except AnymailRequestsAPIError as exc:
            raise self._call_failure(exc) from exc
        except AnymailAPIError as exc:  # an SDK-based backend (SES): no HTTP status to read
            raise ProviderError(
                OUTCOME_UNKNOWN.format(reason=f"{self.esp_name} API error: {exc}"),
                permanent=True,
                outcome_unknown=True,
            ) from exc
        except (AnymailError, ValueError, TypeError) as exc:  # unsupported feature, unserialisable data
            raise ProviderError(
                f"The message could not be sent through {self.esp_name}: {exc}", permanent=True
            ) from exc
        except ImproperlyConfigured as exc:
            raise ProviderError(
                f"{self.esp_name} is not configured: {exc}", permanent=True, provider_fault=True
            ) from exc
        statuses = {address.lower(): status for address, status in email.anymail_status.recipients.items()}
        return [self._result(statuses.get(message.recipient.lower())) for message in messages]

    @staticmethod
    def _build(messages: list[OutgoingMessage]) -> AnymailMessage:
        first = messages[0]
        email = AnymailMessage(
            subject=first.subject,
            body=first.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient for message in messages],
        )
        # Per-recipient data makes it a batch send: one message (and message id) per recipient.
        email.merge_metadata = {message.recipient: {"log_id": message.log_id} for message in messages}
        if first.provider_template_id:
            email.template_id = first.provider_template_id
            email.merge_data = {message.recipient: message.variables for message in messages}
        unsubscribe = {
            message.recipient: _unsubscribe_headers(message)
            for message in messages
            if message.unsubscribe_url
        }
        if unsubscribe:
            email.merge_headers = unsubscribe
        return email

    @staticmethod
    def _build_one(message: OutgoingMessage) -> AnymailMessage:
        email = AnymailMessage(
            subject=message.subject,
            body=message.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            headers=_unsubscribe_headers(message) if message.unsubscribe_url else None,
        )
        email.metadata = {"log_id": message.log_id}
        if message.provider_template_id:
            email.template_id = message.provider_template_id
            email.merge_global_data = message.variables
        return email

    def _call_failure(self, exc: AnymailRequestsAPIError) -> ProviderError:
        response = exc.response
        if response is None:  # no answer: anymail raised it from the requests exception
            cause = exc.__cause__
            return request_failure(
                self.esp_name, cause if isinstance(cause, requests.RequestException) else exc
            )
        if failure := status_failure(self.esp_name, response):
            return failure
        text = response.text[:2048]
        if response.status_code < 300:  # accepted, but the answer could not be read
            return ProviderError(
                OUTCOME_UNKNOWN.format(reason=f"unreadable {self.esp_name} answer: {exc}"),
                permanent=True,
                outcome_unknown=True,
                response=text,
            )
        if response.status_code in CREDENTIAL_STATUSES:
            return ProviderError(
                f"{self.esp_name} refused our credentials (HTTP {response.status_code}).",
                permanent=True,
                provider_fault=True,
                response=text,
            )
        return ProviderError(
            f"{self.esp_name} refused the request (HTTP {response.status_code}): {exc.describe_response()}",
            permanent=True,
            response=text,
        )

    def _result(self, status) -> SendResult:
        if status is None or status.status == "unknown":
            return SendResult.unknown(f"{self.esp_name} did not report this recipient")
        if status.status in SENT_STATUSES:
            return SendResult.sent(str(status.message_id))
        return SendResult.failed(REFUSALS.get(status.status, f"{self.esp_name} status {status.status}."))


def _unsubscribe_headers(message: OutgoingMessage) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{message.unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
