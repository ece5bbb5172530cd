"""Email through Django's email backends (SMTP in production, console in the embedded run).

Each email carries RFC 8058 one-click unsubscribe headers. Outcomes per message: a refusal
by the server, or a message that cannot be built (a header with a line break), fails that
message; a connection lost mid-message makes its outcome unknown
(failed, never resent) and leaves the rest of the chunk to be retried.
"""

import smtplib
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from providers.base import OutgoingMessage, Provider, ProviderError, SendResult

_REFUSALS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


class DjangoEmailProvider(Provider):
    channels = frozenset({"email"})
    max_batch_size = 10  # per SMTP connection; bounds the time between two claim renewals

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        connection = get_connection(fail_silently=False)
        try:
            connection.open()
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderError(f"Mail server rejected our credentials: {exc}", permanent=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ProviderError(f"Could not connect to the mail server: {exc}", permanent=False) from exc
        try:
            return self._send_each(connection, messages)
        finally:
            try:
                connection.close()
            except (OSError, smtplib.SMTPException):
                pass

    def _send_each(self, connection, messages):
        results: list[SendResult] = []
        for index, message in enumerate(messages):
            email = self._build(message, connection)
            try:
                email.send()
            except _REFUSALS as exc:
                results.append(SendResult.failed(f"Mail server refused the message: {_describe(exc)}"))
            except ValueError as exc:  # BadHeaderError, unencodable text: refused before a byte was sent
                results.append(SendResult.failed(f"The message could not be built: {exc}"))
            except (smtplib.SMTPException, OSError) as exc:
                results.append(SendResult.unknown(f"connection lost: {exc}"))
                not_attempted = SendResult.retry(
                    "Not attempted: the mail server connection was lost earlier."
                )
                results.extend(not_attempted for _ in messages[index + 1 :])
                break
            else:
                results.append(SendResult.sent(email.extra_headers["Message-ID"]))
        return results

    @staticmethod
    def _build(message: OutgoingMessage, connection) -> EmailMultiAlternatives:
        headers = {"Message-ID": make_msgid(idstring=message.log_id, domain=settings.EMAIL_MESSAGE_ID_DOMAIN)}
        if message.unsubscribe_url:
            headers["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return EmailMultiAlternatives(
            subject=message.subject,
            body=message.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            headers=headers,
            connection=connection,
        )


def _describe(exc: smtplib.SMTPException) -> str:
    """`550 5.1.1 No such user`: the server's code and reply, however smtplib carries them."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reason = next(iter(exc.recipients.values()))
    else:
        code, reason = getattr(exc, "smtp_code", ""), getattr(exc, "smtp_error", b"")
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else reason
    return f"{code} {text}".strip()
