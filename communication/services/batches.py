"""Batch creation (bulk send, staff retry), enqueueing dispatch, and batch completion."""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from kombu.exceptions import OperationalError as BrokerError

from authms.api.envelope import rfc3339
from authms.errors import NotFoundError, PermissionDeniedError, ValidationError
from authms.ids import new_ids
from authms.models import User
from communication.channels import channel_spec
from communication.models import (
    CRITICAL_CATEGORIES,
    NEVER_HANDED_OVER,
    Batch,
    Category,
    Channel,
    CommunicationLog,
    Device,
    Event,
    Status,
    StatusDetail,
)
from communication.recipients import normalise, normalise_all, suppression_key
from communication.selectors import batch_status_counts
from communication.services.devices import push_targets
from communication.services.events import event_record
from communication.services.frequency import frequency_capped
from communication.services.preferences import audience_rules
from communication.services.pricing import estimated_cost
from communication.services.routing import route, tenant_order
from communication.services.suppression import suppressed_keys
from communication.services.usage import usage_reserve
from notifications.services import notify
from providers.base import Provider, push_notification_json
from providers.registry import channel_route, provider_by_name
from templates.rendering import render
from templates.selectors import template_get_active

logger = logging.getLogger(__name__)

# --- Bulk send ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkResult:
    batch: Batch
    logs: list[CommunicationLog]


def _resolve_owner(*, actor: User, user_id: str | None) -> User:
    if not user_id or user_id == actor.id:
        return actor
    if not actor.is_tenant_admin:
        raise PermissionDeniedError(_("Only tenant admins may send on behalf of another user."))
    owner = User.objects.filter(id=user_id, tenant_id=actor.tenant_id, is_active=True).first()
    if owner is None:
        raise NotFoundError(_("No active user %(id)r in your tenant.") % {"id": user_id})
    return owner


def _check_recipient_count(recipients: Sequence[str]):
    limit = settings.BULK_MAX_RECIPIENTS
    if len(recipients) > limit:
        raise ValidationError.for_field(
            "recipients",
            _("At most %(limit)s recipients per request; got %(count)s.")
            % {"limit": f"{limit:,}", "count": f"{len(recipients):,}"},
        )


def _check_length(channel: str, text: str, provider: Provider | None = None) -> None:
    """Count what the recipient will get (an SMS signature included) against our limit and the
    provider's (push: several providers, one per push service, and our limit alone)."""
    limit = channel_spec(channel).max_length
    if provider is not None:
        text = provider.text_as_sent(text)
        if provider.max_text_length is not None:
            limit = min(limit, provider.max_text_length)
    if len(text) > limit:
        raise ValidationError.for_field(
            "content",
            _("The %(channel)s text is %(length)s characters; the limit is %(limit)s.")
            % {"channel": channel, "length": f"{len(text):,}", "limit": f"{limit:,}"},
        )


def _check_send_at(send_at: datetime | None) -> None:
    if send_at is None:
        return
    now = timezone.now()
    if send_at <= now:
        raise ValidationError.for_field("send_at", _("send_at is in the past; leave it out to send now."))
    if send_at > now + timedelta(days=settings.SCHEDULE_MAX_DAYS):
        raise ValidationError.for_field(
            "send_at", _("send_at is more than %(days)d days ahead.") % {"days": settings.SCHEDULE_MAX_DAYS}
        )


def _message_category(template, category: str | None) -> str:
    """The template's category; free text says its own (general by default) but cannot claim a
    critical one, which would pass preferences and quiet hours without a reviewed template."""
    if template is not None:
        if category and category != template.category:
            raise ValidationError.for_field(
                "category",
                _("The template's category is %(category)s; leave category out or send that.")
                % {"category": template.category},
            )
        return template.category
    category = category or Category.GENERAL
    if category in CRITICAL_CATEGORIES:
        raise ValidationError.for_field(
            "category", _("%(category)s messages must use a template.") % {"category": category}
        )
    return category


def _check_push_size(rendered, push_data: dict | None) -> None:
    """The whole notification as a provider sends it (title, body, data, link, a log id) must
    fit PUSH_MAX_PAYLOAD_BYTES, checked before anything is queued."""
    _check_length(Channel.PUSH, rendered.outbound_content)
    size = len(
        push_notification_json(
            title=rendered.outbound_subject, body=rendered.outbound_content, data=(push_data or {}).get("data", {}),
            link=(push_data or {}).get("link", ""), log_id=new_ids("log", 1)[0],
        )
    )  # fmt: skip
    if size > settings.PUSH_MAX_PAYLOAD_BYTES:
        raise ValidationError.for_field(
            "content",
            _(
                "The push notification is %(size)s bytes with its title, data and link; the limit is %(limit)s."
            )
            % {"size": f"{size:,}", "limit": f"{settings.PUSH_MAX_PAYLOAD_BYTES:,}"},
        )


def bulk_send(
    *,
    actor: User,
    channel: str,
    recipients: Sequence[str],
    content: str | None = None,
    subject: str | None = None,
    template: str | None = None,
    variables: dict[str, str] | None = None,
    user_id: str | None = None,
    data: dict[str, str] | None = None,
    link: str | None = None,
    send_at: datetime | None = None,
    cancellation_key: str | None = None,
    category: str | None = None,
) -> BulkResult:
    """Create one pending log per distinct recipient and dispatch them after commit.

    Invalid and suppressed recipients do not fail the request: their logs are created
    as `failed` with the reason. Must run inside a transaction (the API's idempotency
    wrapper owns it), so the logs and the idempotency record commit together.

    `send_at` schedules the logs (pending, `scheduled`, due then); `cancellation_key` names
    the batch for POST /communication/cancel. The message's category (the template's, else
    `category`, else general) decides whom recipients' preferences leave out (failed,
    `preference_off`) and whose quiet hours hold it (pending, `quiet_hours`, due when they end).

    Push: `recipients` are user ids of the tenant; each of their active devices gets a log
    (a user without one gets a failed log saying so), with `subject` as the title and the
    `data` map and deep `link` sent along.
    """
    _check_recipient_count(recipients)
    _check_send_at(send_at)
    variables = variables or {}
    owner = _resolve_owner(actor=actor, user_id=user_id)
    tmpl = (
        template_get_active(tenant_id=actor.tenant_id, code=template, channel=channel) if template else None
    )
    category = _message_category(tmpl, category)
    body = tmpl.body if tmpl else content
    if not body:
        raise ValidationError.for_field("content", _("content is required unless a template is given."))
    subject_text = subject or (tmpl.subject if tmpl else "")
    if channel_spec(channel).needs_subject and not subject_text:
        raise ValidationError.for_field(
            "subject", _("subject is required for email (the template has none).")
        )
    rendered = render(
        body=body, subject=subject_text, variables=variables, sensitive=bool(tmpl and tmpl.sensitive)
    )
    if "\r" in rendered.outbound_subject or "\n" in rendered.outbound_subject:
        raise ValidationError.for_field(
            "subject", _("The subject must be one line: it contains a line break (CR or LF).")
        )
    push = channel == Channel.PUSH
    if not push and (data or link):
        raise ValidationError.for_field("data" if data else "link", _("data and link are for push only."))
    codes = tmpl.provider_codes if tmpl else {}
    if push:
        # Each named user's active devices, each with the provider serving its push service.
        push_data = {"data": data or {}, "link": link or ""} if data or link else None
        _check_push_size(rendered, push_data)
        targets = push_targets(tenant_id=actor.tenant_id, user_ids=list(recipients))
        normalised = [recipient for recipient, _provider in targets]
        provider_of = {recipient.value: name for recipient, name in targets}
        suppressed = {}
    else:
        push_data = None
        provider = route(channel, codes, tenant_id=actor.tenant_id)
        if provider is None:
            raise ValidationError.for_field(
                "template" if tmpl else "content",
                _(
                    "No provider configured for %(channel)s can send this: %(providers)s send approved templates only. Use a template that has a code for them."
                )
                % {
                    "channel": channel,
                    "providers": ", ".join(channel_route(channel, tenant_order(actor.tenant_id, channel))),
                },
            )
        _check_length(channel, rendered.outbound_content, provider)
        normalised = normalise_all(channel, list(recipients))
        provider_of = {recipient.value: provider.name for recipient in normalised}
        suppressed = suppressed_keys(
            tenant_id=actor.tenant_id,
            channel=channel,
            category=category,
            recipients=[r.value for r in normalised if r.is_valid],
        )
    valid = [r.value for r in normalised if r.is_valid]
    capped = frequency_capped(tenant_id=actor.tenant_id, channel=channel, template=tmpl, recipients=valid)
    audience = audience_rules(
        tenant=actor.tenant,
        channel=channel,
        category=category,
        recipients=valid,
        moment=send_at or timezone.now(),
    )
    total_chars = len(rendered.outbound_content) * len(normalised)
    if total_chars > settings.BULK_MAX_TOTAL_CHARS:
        raise ValidationError.for_field(
            "recipients",
            _(
                "This request would store %(total)s characters of text; the limit is %(limit)s. Send it in smaller batches."
            )
            % {"total": f"{total_chars:,}", "limit": f"{settings.BULK_MAX_TOTAL_CHARS:,}"},
        )
    payload = {}
    if rendered.outbound_content != rendered.content:
        payload["body"] = rendered.outbound_content
    if rendered.outbound_subject != rendered.subject:
        payload["subject"] = rendered.outbound_subject
    if codes:
        payload.update(provider_codes=codes, variables=variables)
    if channel_spec(channel).unsubscribe_link:  # the link unsubscribes from this category
        payload["category"] = category

    def refusal(recipient) -> tuple[str, str] | None:
        """Why this recipient gets nothing (detail, reason), checked in this order; or None."""
        if recipient.error:
            return StatusDetail.INVALID, recipient.error
        value = recipient.value
        if why := suppressed.get(suppression_key(channel, value)):
            return (
                StatusDetail.SUPPRESSED,
                f"Recipient is on this tenant's {channel} suppression list ({why}).",
            )
        if value in audience.off:
            return StatusDetail.PREFERENCE_OFF, audience.off[value]
        if value in capped:
            return StatusDetail.FREQUENCY_CAPPED, capped[value]
        return None

    def log_for(recipient, log_id, batch_id, now):
        refused = refusal(recipient)
        held_until = audience.held_until.get(recipient.value)
        if refused:
            status, (detail, error) = Status.FAILED, refused
        else:
            status, error = Status.PENDING, None
            detail = (
                StatusDetail.QUIET_HOURS
                if held_until
                else StatusDetail.SCHEDULED
                if send_at
                else StatusDetail.QUEUED
            )
        return CommunicationLog(
            id=log_id,
            tenant_id=actor.tenant_id,
            user=owner,
            channel=channel,
            provider=provider_of.get(recipient.value, ""),
            template=tmpl,
            recipient=recipient.value,
            subject=rendered.subject,
            content=rendered.content,
            status=status,
            status_detail=detail,
            next_attempt_at=None if refused else held_until or send_at,
            error=error,
            batch_id=batch_id,
            send_payload=None if refused else (payload or None),
            push_data=push_data,
            created_at=now,
            updated_at=now,
        )

    batch, logs = _batch_create(
        tenant_id=actor.tenant_id,
        sender=actor,
        user=owner,
        channel=channel,
        items=normalised,
        make_log=log_for,
        send_at=send_at,
        cancellation_key=cancellation_key or "",
        reserve=lambda pending: usage_reserve(
            tenant=actor.tenant, channel=channel, count=len(pending), cost=lambda: estimated_cost(pending)
        ),
    )
    return BulkResult(batch=batch, logs=logs)


def _batch_create(
    *,
    tenant_id: str,
    sender: User,
    user: User,
    channel: str,
    items: Sequence,
    make_log,
    reserve=None,
    **batch_fields,
):
    """The one way a batch and its logs are written, for bulk send and staff retry alike.

    `make_log(item, log_id, batch_id, now)` builds one log per item; `reserve(pending_logs)`
    may refuse the batch (sending caps) before anything is written. All rows are written
    in one transaction (the caller's, when there is one); dispatch starts after commit, or
    the batch is completed at once when no log is pending.
    """
    now = timezone.now()
    batch = Batch(
        tenant_id=tenant_id, sender=sender, user=user, channel=channel, total=len(items), created_at=now,
        **batch_fields,
    )  # fmt: skip
    logs = [
        make_log(item, log_id, batch.id, now)
        for log_id, item in zip(new_ids("log", len(items)), items, strict=True)
    ]
    pending_logs = [log for log in logs if log.status == Status.PENDING]
    pending = len(pending_logs)
    if not pending:
        batch.completed_at = now
    with transaction.atomic():
        if reserve is not None:  # the sending caps: the whole batch or nothing
            reserve(pending_logs)
        batch.save()
        CommunicationLog.objects.bulk_create(logs, batch_size=2000)
        if pending:
            transaction.on_commit(lambda: enqueue_dispatch(batch.id, pending))
        else:
            notify_batch_completed(batch_id=batch.id)
    return batch, logs


def bulk_send_now(**kwargs) -> BulkResult:
    """bulk_send in its own transaction, for callers outside the API (admin actions)."""
    with transaction.atomic(durable=True):
        return bulk_send(**kwargs)


def enqueue_dispatch(batch_id: str, pending: int, *, eta: datetime | None = None) -> None:
    """Start dispatch tasks for a batch (now, or at `eta`); a broker outage only delays them
    (the sweeper re-enqueues from the database).

    The task is looked up by name, so this module does not import the tasks module that
    imports it."""
    dispatch_batch = current_app.tasks["communication.tasks.dispatch_batch"]
    workers = max(1, min(settings.DISPATCH_FANOUT, -(-pending // settings.DISPATCH_CHUNK_SIZE)))
    try:
        for _ in range(workers):
            dispatch_batch.apply_async((batch_id,), eta=eta)
    except (OSError, BrokerError) as exc:
        logger.warning("Could not enqueue batch %s (%s); the pending sweeper will pick it up.", batch_id, exc)


def batch_complete_if_done(*, batch_id: str) -> bool:
    """Mark the batch complete once no log of it is pending; True only for the call that did.

    That call also tells the sender, so the notice goes out exactly once.
    """
    pending = CommunicationLog.objects.filter(batch_id=OuterRef("id"), status=Status.PENDING)
    with transaction.atomic():  # the completion and its event (batch.completed) together
        completed = bool(
            Batch.objects.filter(id=batch_id, completed_at__isnull=True)
            .filter(~Exists(pending))
            .update(completed_at=timezone.now())
        )
        if completed:
            notify_batch_completed(batch_id=batch_id)
    return completed


@dataclass
class CancelResult:
    cancelled: int  # pending logs that never reached a provider: now failed, `cancelled`
    already_left: (
        int  # logs handed to a provider before the cancel (sent, delivered, failed at it, in flight)
    )


def batches_cancel(*, actor: User, batches: Sequence[Batch]) -> CancelResult:
    """Cancel every log of these batches not yet handed to a provider, in one UPDATE.

    A log a worker has claimed may be on its way to the gateway: it is left alone and counted
    as already left, and the claim's row lock makes the two never both win (the UPDATE re-checks
    `claimed_at IS NULL` after waiting). Logs held for reconciliation may have gone out too."""
    batch_ids = [batch.id for batch in batches]
    if not batch_ids:
        return CancelResult(cancelled=0, already_left=0)
    who = actor.get_username()
    with transaction.atomic():
        cancelled = (
            CommunicationLog.objects.filter(
                batch_id__in=batch_ids, status=Status.PENDING, claimed_at__isnull=True
            )
            .exclude(status_detail=StatusDetail.RECONCILING)
            .update(
                status=Status.FAILED,
                status_detail=StatusDetail.CANCELLED,
                error=f"Cancelled by {who} before it was sent.",
                next_attempt_at=None,
                send_payload=None,
                updated_at=timezone.now(),
            )
        )
        already_left = (
            CommunicationLog.objects.filter(batch_id__in=batch_ids)
            .exclude(status=Status.FAILED, status_detail__in=NEVER_HANDED_OVER)
            .count()
        )
    for batch_id in batch_ids:
        batch_complete_if_done(batch_id=batch_id)
    return CancelResult(cancelled=cancelled, already_left=already_left)


def notify_batch_completed(*, batch_id: str) -> None:
    """One inbox notice to the sender with the batch's counts and a link to its logs, and the
    `batch.completed` event, in the completing transaction."""
    batch = Batch.objects.get(id=batch_id)
    counts = batch_status_counts(batch_id=batch_id)
    completed_at = batch.completed_at or timezone.now()
    event_record(
        type=Event.Type.BATCH_COMPLETED,
        tenant_id=batch.tenant_id,
        user_id=batch.user_id,
        batch_id=batch.id,
        channel=batch.channel,
        data={
            "id": batch.id, "user_id": batch.user_id, "channel": batch.channel, "total": batch.total,
            "counts": {status: counts[status] for status in (Status.SENT, Status.DELIVERED, Status.FAILED)},
            "completed_at": rfc3339(completed_at),
        },
    )  # fmt: skip
    delivered_or_sent = counts[Status.SENT] + counts[Status.DELIVERED]
    logs_path = "admin/communication/logs" if batch.sender_id != batch.user_id else "communication/logs"
    channel = channel_spec(batch.channel).label
    notify(
        tenant_id=batch.tenant_id,
        user_ids=[batch.sender_id],
        type="communication",
        event_type="communication.bulk.completed",
        priority="high" if counts[Status.FAILED] else "low",
        title="",
        template="communication.bulk.completed",
        params={
            "channel": channel,
            "sent": f"{delivered_or_sent:,}",
            "failed": f"{counts[Status.FAILED]:,}",
            "total": f"{batch.total:,}",
        },  # fmt: skip
        action_url=f"/{settings.API_PREFIX}{logs_path}?batch_id={batch.id}",
        metadata={"batch_id": batch.id, "channel": batch.channel, "total": batch.total, **counts},
    )


# --- Staff retry --------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryResult:
    batches: list[Batch]  # one per tenant, user and channel of the retried logs
    retried: int
    originals: list[str]  # ids of the failed logs that were copied
    skipped: dict[str, int]  # reason (translatable) → how many


# Why a selected log was not retried (shown to staff in their language).
NOT_RETRYABLE = gettext_lazy("not failed or not visible")
ERASED = gettext_lazy("its real text or variables were erased after sending")
INVALID = gettext_lazy("invalid recipient")
NO_PROVIDER = gettext_lazy("no provider is configured for its channel")
NO_FREE_TEXT = gettext_lazy("no configured provider sends free text")
SUPPRESSED = gettext_lazy("recipient is suppressed")
DEVICE_GONE = gettext_lazy("the device is no longer registered or active")


def logs_retry(*, actor: User, log_ids: Sequence[str]) -> RetryResult:
    """Resend failed logs as new pending logs in a new batch, through the normal pipeline.

    The failed log stays as it was (status never moves backwards); its copy points back at
    it with `retry_of`. Logs whose real text or variables were erased (sensitive and
    provider templates) cannot be resent, and suppressed recipients are skipped.
    """
    queryset = CommunicationLog.objects.filter(id__in=log_ids, status=Status.FAILED)
    if not actor.is_platform_admin:
        queryset = queryset.filter(tenant_id=actor.tenant_id)
    originals = list(queryset.select_related("template"))
    skipped: dict[str, int] = defaultdict(int)
    skipped[NOT_RETRYABLE] = len(set(log_ids)) - len(originals)
    by_scope: dict[tuple[str, str], list[str]] = defaultdict(list)
    for original in originals:
        by_scope[(original.tenant_id, original.channel)].append(original.recipient)
    suppressed = {
        (tenant_id, channel): suppressed_keys(tenant_id=tenant_id, channel=channel, recipients=recipients)
        for (tenant_id, channel), recipients in by_scope.items()
    }
    by_batch: dict[tuple[str, str, str], list[CommunicationLog]] = defaultdict(list)
    providers: dict[str, str] = {}  # log id → the provider its copy starts with
    for original in originals:
        reason, provider = _retry_route(original, suppressed[(original.tenant_id, original.channel)])
        if reason is None:
            providers[original.id] = provider.name
            by_batch[(original.tenant_id, original.user_id, original.channel)].append(original)
        else:
            skipped[reason] += 1
    skipped = {reason: count for reason, count in skipped.items() if count}
    if not by_batch:
        return RetryResult(batches=[], retried=0, originals=[], skipped=skipped)

    def copy_of(original, log_id, batch_id, now):
        return CommunicationLog(
            id=log_id,
            tenant_id=original.tenant_id,
            user_id=original.user_id,
            channel=original.channel,
            provider=providers[original.id],
            template_id=original.template_id,
            recipient=original.recipient,
            subject=original.subject,
            content=original.content,
            push_data=original.push_data,
            batch_id=batch_id,
            retry_of=original.id,
            status_detail=StatusDetail.QUEUED,
            created_at=now,
            updated_at=now,
        )

    users = User.objects.in_bulk({user_id for _tenant, user_id, _channel in by_batch})
    with transaction.atomic():
        batches = [
            _batch_create(
                tenant_id=tenant_id,
                sender=actor,
                user=users[user_id],
                channel=channel,
                items=group,
                make_log=copy_of,
            )[0]
            for (tenant_id, user_id, channel), group in by_batch.items()
        ]
    return RetryResult(
        batches=batches,
        retried=sum(batch.total for batch in batches),
        originals=[original.id for group in by_batch.values() for original in group],
        skipped=skipped,
    )


def _push_retry_route(original: CommunicationLog) -> tuple[str | None, Provider | None]:
    """A push goes again to the same device, through the provider serving its push service."""
    if not normalise(original.channel, original.recipient).is_valid:
        return INVALID, None
    device = Device.objects.filter(tenant_id=original.tenant_id, id=original.recipient, active=True).first()
    if device is None:
        return DEVICE_GONE, None
    return None, provider_by_name(settings.PUSH_PROVIDERS[device.provider])


def _retry_route(original: CommunicationLog, suppressed) -> tuple[str | None, Provider | None]:
    """(why this failed log cannot be resent as it is, None) or (None, the provider to start with)."""
    if original.template and (original.template.sensitive or original.template.provider_codes):
        return ERASED, None
    if original.channel == Channel.PUSH:
        return _push_retry_route(original)
    try:
        provider = route(original.channel, {}, tenant_id=original.tenant_id)
    except LookupError:  # a channel without a provider in this deployment's settings
        return NO_PROVIDER, None
    if provider is None:
        return NO_FREE_TEXT, None
    if not normalise(original.channel, original.recipient).is_valid:
        return INVALID, None
    if suppression_key(original.channel, original.recipient) in suppressed:
        return SUPPRESSED, None
    return None, provider
