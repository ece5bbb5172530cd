"""ESP tracking events (django-anymail's `tracking` signal) applied to logs and suppressions.

- delivered → the log is delivered; bounced, rejected, failed → failed with the ESP's reason.
  Through `reports_apply`, so an event that arrives late or twice never moves a log back.
- A hard bounce or a complaint suppresses the address for the log's tenant at once; an
  unsubscribe too. Soft bounces (temporary failures, and bounces the ESP itself calls soft)
  suppress it once EMAIL_SOFT_BOUNCE_LIMIT different messages bounced within
  EMAIL_SOFT_BOUNCE_WINDOW.
- Every event about a known message is kept as an EmailEvent (opens and clicks are counted
  there, and never change the status); an event the ESP gave an id is recorded once.
- An event for a message id we do not know, or naming another recipient or log than the
  message id's, changes nothing.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from anymail.signals import AnymailTrackingEvent, EventType
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from communication.models import Channel, CommunicationLog, EmailEvent, Status, Suppression
from communication.services.status import reports_apply
from communication.services.suppression import suppression_add
from providers.base import StatusReport

logger = logging.getLogger(__name__)

Kind = EmailEvent.Kind

KINDS = {
    EventType.DELIVERED: Kind.DELIVERED,
    EventType.BOUNCED: Kind.HARD_BOUNCE,  # or soft: see _is_soft
    EventType.DEFERRED: Kind.SOFT_BOUNCE,
    EventType.REJECTED: Kind.REJECTED,
    EventType.FAILED: Kind.FAILED,
    EventType.COMPLAINED: Kind.COMPLAINED,
    EventType.UNSUBSCRIBED: Kind.UNSUBSCRIBED,
    EventType.OPENED: Kind.OPENED,
    EventType.CLICKED: Kind.CLICKED,
}
FAILING = {
    Kind.HARD_BOUNCE: "Bounced",
    Kind.REJECTED: "Rejected by the ESP",
    Kind.FAILED: "The ESP could not send it",
}
SUPPRESSING = {
    Kind.HARD_BOUNCE: Suppression.Reason.BOUNCED,
    Kind.COMPLAINED: Suppression.Reason.COMPLAINED,
    Kind.UNSUBSCRIBED: Suppression.Reason.UNSUBSCRIBED,
}


@dataclass(frozen=True)
class TrackingResult:
    outcome: str  # "applied", "duplicate", "unknown message", "ignored"
    suppressed: bool = False


def email_tracking_apply(event: AnymailTrackingEvent, esp_name: str) -> TrackingResult:
    """Apply one normalised tracking event from the ESP called `esp_name`."""
    kind = KINDS.get(event.event_type)
    if kind is None:  # queued, sent, unknown, autoresponses: nothing we keep
        return TrackingResult("ignored")
    log = _email_log(event.message_id)
    if log is None:
        logger.info("%s %s event for a message id we do not know", esp_name, event.event_type)
        return TrackingResult("unknown message")
    if not _names_this_log(event, log):
        logger.warning(
            "%s %s event: message id %s of another recipient or log",
            esp_name,
            event.event_type,
            event.message_id,
        )
        return TrackingResult("ignored")
    if kind == Kind.HARD_BOUNCE and _is_soft(event, esp_name):
        kind = Kind.SOFT_BOUNCE
    at = event.timestamp or timezone.now()
    detail = _describe(event)
    with transaction.atomic():
        try:
            with transaction.atomic():
                EmailEvent.objects.create(
                    log=log, tenant_id=log.tenant_id, recipient=log.recipient, kind=kind, at=at,
                    detail=detail, esp=esp_name, event_id=event.event_id or None,
                )  # fmt: skip
        except IntegrityError:  # the ESP redelivered an event it already gave us
            return TrackingResult("duplicate")
        _apply_status(log, kind, event, at, detail)
        suppressed = _apply_policy(log, kind, detail)
    return TrackingResult("applied", suppressed)


def _email_log(message_id) -> CommunicationLog | None:
    if not message_id:
        return None
    return (
        CommunicationLog.objects.filter(provider_message_id=str(message_id), channel=Channel.EMAIL)
        .only("id", "tenant_id", "recipient", "status", "provider_message_id")
        .first()
    )


def _names_this_log(event: AnymailTrackingEvent, log: CommunicationLog) -> bool:
    """The event's recipient and our per-recipient metadata, where it carries them, are this
    log's: an event pairing one tenant's message id with another address (or log) changes
    neither tenant's records."""
    if event.recipient and event.recipient.lower() != log.recipient.lower():
        return False
    log_id = (event.metadata or {}).get("log_id") if isinstance(event.metadata, dict) else None
    return not log_id or log_id == log.id


def _is_soft(event: AnymailTrackingEvent, esp_name: str) -> bool:
    """Bounces that anymail reports as `bounced` although the ESP calls them temporary."""
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    esp = esp_name.lower()
    if esp == "postmark":
        return raw.get("Type") == "SoftBounce"
    if esp == "amazon ses":
        return (event.description or "").startswith(("Transient", "Undetermined"))
    return False


def _describe(event: AnymailTrackingEvent) -> str:
    parts = [event.description, event.mta_response, event.click_url]
    return " — ".join(str(part) for part in parts if part)[:1000]


def _apply_status(log, kind, event, at, detail) -> None:
    if kind == Kind.DELIVERED:
        status, error = Status.DELIVERED, None
    elif kind in FAILING:
        status, error = Status.FAILED, f"{FAILING[kind]}: {detail}" if detail else f"{FAILING[kind]}."
    elif kind == Kind.SOFT_BOUNCE and event.event_type == EventType.BOUNCED:
        # The ESP gave up on this message (a soft bounce it will not retry).
        status, error = Status.FAILED, f"Soft bounce: {detail}"
    else:  # deferrals, complaints, opens, clicks: the status stays
        return
    reports_apply([StatusReport(log.provider_message_id, status, at=at, error=error)])


def _apply_policy(log, kind, detail) -> bool:
    """Suppress the address for the log's tenant when the bounce policy says so."""
    if kind in SUPPRESSING:
        return _suppress(log, SUPPRESSING[kind], detail)
    if kind != Kind.SOFT_BOUNCE:
        return False
    since = timezone.now() - timedelta(seconds=settings.EMAIL_SOFT_BOUNCE_WINDOW_SECONDS)
    bounced_messages = (
        EmailEvent.objects.filter(
            tenant_id=log.tenant_id, recipient=log.recipient, kind=Kind.SOFT_BOUNCE, at__gte=since
        )
        .values("log_id")
        .distinct()
        .count()
    )
    if bounced_messages < settings.EMAIL_SOFT_BOUNCE_LIMIT:
        return False
    days = settings.EMAIL_SOFT_BOUNCE_WINDOW_SECONDS // 86400
    return _suppress(
        log, Suppression.Reason.BOUNCED, f"{bounced_messages} soft bounces in {days} days; last: {detail}"
    )


def _suppress(log, reason, detail) -> bool:
    return suppression_add(
        tenant_id=log.tenant_id, channel=Channel.EMAIL, recipient=log.recipient, reason=reason, detail=detail
    )


def on_tracking(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    """Receiver of anymail's `tracking` signal."""
    email_tracking_apply(event, esp_name)
