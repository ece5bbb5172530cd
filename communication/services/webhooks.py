"""Tenant webhook endpoints and the delivery of their events (Standard Webhooks).

Deliveries are rows (created by the events sequencer), due at `next_attempt_at`: a beat task
every 2 s, and a kick after each sequencing, claims due ones with SKIP LOCKED and posts them,
so retries never wait inside the broker (Redis redelivers long-ETA tasks after its visibility
timeout). Each event's body is the bytes frozen at sequencing; only the timestamp and the
signatures change per attempt. At least once: receivers dedupe on `webhook-id`.
"""

import logging
import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from authms.audit import staff_action_record
from authms.env import parse_duration_seconds
from authms.errors import PermissionDeniedError, ValidationError
from authms.models import User
from communication.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from communication.webhook_signing import decrypt, encrypt, new_secret, signature_header
from communication.webhook_transport import PostResult, UnsafeTarget, checked_target, new_client, post
from notifications.services import notify_tenant_admins

logger = logging.getLogger(__name__)

CLAIM_LIMIT = 200  # deliveries per claim
SLOW_DOWN_SECONDS = 60  # after a 429 or a timeout, no sooner than this (Svix)
PER_ENDPOINT_IN_FLIGHT = 8
PER_ENDPOINT_CLAIM = 100  # deliveries of one endpoint per claim: a slow one holds a sender ~200 s at most


# --- Endpoints ------------------------------------------------------------------------------


def url_clean(url: object) -> str:
    if not isinstance(url, str) or not url or len(url) > 1024:
        raise ValidationError.for_field("url", _("A URL of at most 1024 characters."))
    try:
        checked_target(url)
    except UnsafeTarget as refusal:
        raise ValidationError.for_field("url", str(refusal)) from None
    return url


def event_types_clean(types: object) -> list[str]:
    known = [value for value in Event.Type.values if value != Event.Type.PROVIDER_SWITCHED]
    if not isinstance(types, list) or not all(isinstance(name, str) for name in types):
        raise ValidationError.for_field("event_types", _("A list of event types."))
    unknown = sorted(set(types) - set(known))
    if unknown:
        raise ValidationError.for_field(
            "event_types", _("Unknown event type %(types)s; allowed: %(allowed)s.")
            % {"types": ", ".join(unknown), "allowed": ", ".join(known)},
        )  # fmt: skip
    return sorted(set(types))


def endpoint_create(
    *, actor: User, url: str, event_types=(), description: str = "", tenant_id: str | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the actor's tenant (a platform admin may name another) and its
    secret, shown to the caller only now."""
    if tenant_id and tenant_id != actor.tenant_id and not actor.is_platform_admin:
        raise PermissionDeniedError()
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        tenant_id=tenant_id or actor.tenant_id, url=url_clean(url), event_types=event_types_clean(list(event_types)),
        description=description, secret=encrypt(secret),
    )  # fmt: skip
    staff_action_record(actor=actor, action=f"Created webhook endpoint {endpoint.url}", objects=[endpoint])
    return endpoint, secret


def endpoint_update(*, actor: User, endpoint: WebhookEndpoint, changes: dict) -> WebhookEndpoint:
    if "url" in changes:
        changes["url"] = url_clean(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = event_types_clean(changes["event_types"])
    if changes.get("enabled") is True and not endpoint.enabled:  # re-enabled by an admin: a fresh start
        changes.update(failing_since=None, disabled_reason="")
    with transaction.atomic():
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.save()
        if changes.get("enabled") is False:
            _cancel_pending(endpoint)
        staff_action_record(
            actor=actor, action=f"Changed webhook endpoint: {sorted(changes)}", objects=[endpoint]
        )
    return endpoint


def endpoint_delete(*, actor: User, endpoint: WebhookEndpoint) -> None:
    with transaction.atomic():
        staff_action_record(
            actor=actor, action=f"Deleted webhook endpoint {endpoint.url}", objects=[endpoint]
        )
        endpoint.delete()


def secret_rotate(*, actor: User, endpoint: WebhookEndpoint) -> str:
    """A new secret signs from now on; the current one keeps signing beside it for
    WEBHOOK_ROTATION_OVERLAP (24 h), so receivers can switch without missing an event."""
    secret = new_secret()
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            previous_secret=endpoint.secret,
            previous_secret_expires_at=timezone.now()
            + timedelta(seconds=settings.WEBHOOK_ROTATION_OVERLAP_SECONDS),
            secret=encrypt(secret),
        )
        staff_action_record(actor=actor, action="Rotated the webhook secret", objects=[endpoint])
    endpoint.refresh_from_db()
    return secret


def _secrets_in_use(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [decrypt(endpoint.secret)]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(decrypt(endpoint.previous_secret))
    return secrets


def _cancel_pending(endpoint: WebhookEndpoint) -> int:
    return WebhookDelivery.objects.filter(endpoint=endpoint, state=WebhookDelivery.State.PENDING).update(
        state=WebhookDelivery.State.CANCELLED, next_attempt_at=None
    )


# --- Redelivery -----------------------------------------------------------------------------


def delivery_redeliver(*, actor: User, delivery: WebhookDelivery) -> WebhookDelivery:
    """One more attempt of this event to this endpoint, now (same id and body, fresh signature)."""
    copy = WebhookDelivery.objects.create(
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        next_attempt_at=timezone.now(),
        manual=True,
    )
    staff_action_record(
        actor=actor, action=f"Redelivered event {delivery.event.id}", objects=[delivery.endpoint]
    )
    transaction.on_commit(kick_webhook_sender)
    return copy


def endpoint_recover(*, actor: User, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again, once each, every event since `since` that this endpoint has not received."""
    if since < timezone.now() - timedelta(days=14):
        raise ValidationError.for_field("since", _("Recovery reaches back at most 14 days."))
    delivered = WebhookDelivery.objects.filter(endpoint=endpoint, state=WebhookDelivery.State.DELIVERED)
    missed = (
        WebhookDelivery.objects.filter(endpoint=endpoint, event__occurred_at__gte=since)
        .exclude(state=WebhookDelivery.State.PENDING)
        .exclude(event_id__in=delivered.values("event_id"))
        .values_list("event_id", flat=True)
        .distinct()
    )
    now = timezone.now()
    with transaction.atomic():
        copies = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(endpoint=endpoint, event_id=event_id, next_attempt_at=now, manual=True)
            for event_id in missed
        )
        staff_action_record(
            actor=actor,
            action=f"Recovered {len(copies)} webhook event(s) since {since:%Y-%m-%d %H:%M}",
            objects=[endpoint],
        )
    transaction.on_commit(kick_webhook_sender)
    return len(copies)


def kick_webhook_sender() -> None:
    """Send what is due now rather than at the next beat."""
    from communication.tasks import send_webhooks

    try:
        send_webhooks.delay()
    except Exception as exc:  # noqa: BLE001 - a broker outage only delays them: beat sends them too
        logger.warning("Could not enqueue webhook sending (%s); beat will.", exc)


# --- Sending --------------------------------------------------------------------------------


def retry_delays() -> list[int]:
    return [
        parse_duration_seconds(step) for step in settings.WEBHOOK_RETRY_SCHEDULE.split(",") if step.strip()
    ]


def claim_seconds(limit: int) -> float:
    """How long a sender holds its claim: long enough for every request of it to time out in
    turn, so no other sender takes a delivery that is still in flight."""
    rounds = max(
        -(-limit // max(1, settings.WEBHOOK_CONCURRENCY)), -(-PER_ENDPOINT_CLAIM // PER_ENDPOINT_IN_FLIGHT)
    )
    return rounds * settings.WEBHOOK_TIMEOUT + 30


def deliveries_send(*, limit: int = CLAIM_LIMIT) -> int:
    """Claim due deliveries (at most 100 of one endpoint), post them (WEBHOOK_CONCURRENCY at
    once, at most 8 per endpoint) and record every attempt. Returns how many were attempted."""
    deliveries = _claim(limit)
    if not deliveries:
        return 0
    now = timezone.now()
    secrets = {}
    for delivery in deliveries:
        if delivery.endpoint_id not in secrets:
            secrets[delivery.endpoint_id] = _secrets_in_use(delivery.endpoint, now)
    gates = defaultdict(lambda: threading.Semaphore(PER_ENDPOINT_IN_FLIGHT))
    for delivery in deliveries:
        gates[delivery.endpoint_id]  # noqa: B018 - made before the threads share the dict

    with new_client() as client, ThreadPoolExecutor(max_workers=settings.WEBHOOK_CONCURRENCY) as pool:

        def attempt(delivery: WebhookDelivery) -> PostResult:
            with gates[delivery.endpoint_id]:
                return _post_one(client, delivery, secrets[delivery.endpoint_id])

        results = list(pool.map(attempt, deliveries))
    _record(deliveries, results)
    return len(deliveries)


def _claim(limit: int) -> list[WebhookDelivery]:
    now = timezone.now()
    due = WebhookDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        state=WebhookDelivery.State.PENDING,
        next_attempt_at__lte=now,
    ).order_by("next_attempt_at")
    with transaction.atomic():
        candidates = due.select_for_update(skip_locked=True).values_list("id", "endpoint_id")[: limit * 5]
        per_endpoint, ids = defaultdict(int), []
        for delivery_id, endpoint_id in candidates:  # a slow endpoint cannot fill a claim
            if per_endpoint[endpoint_id] < PER_ENDPOINT_CLAIM and len(ids) < limit:
                per_endpoint[endpoint_id] += 1
                ids.append(delivery_id)
        WebhookDelivery.objects.filter(id__in=ids).update(
            claimed_until=now + timedelta(seconds=claim_seconds(limit))
        )
    return list(
        WebhookDelivery.objects.filter(id__in=ids)
        .select_related("endpoint", "event")
        .only("id", "attempts", "manual", "endpoint", "event__id", "event__body", "endpoint__url",
              "endpoint__secret", "endpoint__previous_secret", "endpoint__previous_secret_expires_at",
              "endpoint__tenant_id", "endpoint__failing_since", "endpoint__enabled")
        .order_by("id")
    )  # fmt: skip


def _post_one(client, delivery: WebhookDelivery, secrets: list[str]) -> PostResult:
    body = delivery.event.body.encode()
    timestamp = int(timezone.now().timestamp())
    headers = {
        "webhook-id": delivery.event.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, delivery.event.id, timestamp, body),
    }
    return post(client, delivery.endpoint.url, headers=headers, body=body)


def _record(deliveries: list[WebhookDelivery], results: list[PostResult]) -> None:
    """The attempts, the deliveries' next states and the endpoints' health, in one transaction
    and a handful of statements for the whole claim."""
    now = timezone.now()
    delays = retry_delays()
    attempts, updated, health = [], [], {}
    for delivery, result in zip(deliveries, results, strict=True):
        ok = result.status_code is not None and 200 <= result.status_code < 300
        attempts.append(
            WebhookAttempt(
                delivery_id=delivery.id, at=now, status_code=result.status_code, error=result.error[:500],
                response=result.response, latency_ms=result.latency_ms, manual=delivery.manual,
            )
        )  # fmt: skip
        delivery.attempts += 1
        delivery.claimed_until = None
        if ok:
            delivery.state, delivery.delivered_at, delivery.next_attempt_at = (
                WebhookDelivery.State.DELIVERED,
                now,
                None,
            )
        elif delivery.manual or delivery.attempts > len(delays):
            delivery.state, delivery.next_attempt_at = WebhookDelivery.State.EXHAUSTED, None
        else:
            delivery.next_attempt_at = now + timedelta(seconds=_delay(delivery.attempts, result))
        updated.append(delivery)
        seen_ok, seen_gone = health.get(delivery.endpoint_id, (False, False))
        health[delivery.endpoint_id] = (seen_ok or ok, seen_gone or result.status_code == 410)
    endpoints = {delivery.endpoint_id: delivery.endpoint for delivery in deliveries}
    with transaction.atomic():
        # An endpoint deleted meanwhile took its deliveries along: nothing left to record for them.
        kept = set(
            WebhookDelivery.objects.filter(id__in=[d.id for d in updated]).values_list("id", flat=True)
        )
        attempts = [attempt for attempt in attempts if attempt.delivery_id in kept]
        WebhookAttempt.objects.bulk_create(attempts, batch_size=1000)
        WebhookDelivery.objects.bulk_update(
            updated,
            ["attempts", "claimed_until", "state", "delivered_at", "next_attempt_at"],
            batch_size=1000,
        )
        for endpoint_id, (ok, gone) in health.items():
            _endpoint_health(endpoints[endpoint_id], ok=ok and not gone, gone=gone, now=now)


def _delay(attempts: int, result: PostResult) -> float:
    """The schedule's next step with ±20 % jitter; a 429 or a timeout waits at least 60 s, and
    a Retry-After is honoured within [the step, twice the step] (Svix)."""
    step = retry_delays()[attempts - 1]
    delay = step * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
    if result.status_code == 429 or result.timed_out:
        delay = max(delay, SLOW_DOWN_SECONDS)
    if result.retry_after is not None:
        delay = min(max(result.retry_after, step), 2 * step)
    return delay


def _endpoint_health(endpoint: WebhookEndpoint, *, ok: bool, gone: bool, now: datetime) -> None:
    """Success clears the failure clock; 410 Gone, or failing without a break for
    WEBHOOK_DISABLE_AFTER (5 days), disables the endpoint and tells the tenant's admins."""
    if ok:
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        endpoint.failing_since = now
    failing_for = now - endpoint.failing_since
    reason = (
        "it answered 410 Gone"
        if gone
        else f"every attempt failed for {failing_for.days} days"
        if failing_for >= timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
        else ""
    )
    if not reason:
        return
    disabled = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_reason=f"Disabled automatically: {reason}."
    )
    if disabled:
        _cancel_pending(endpoint)
        transaction.on_commit(lambda: _tell_admins(endpoint, reason), robust=True)


def _tell_admins(endpoint: WebhookEndpoint, reason: str) -> None:
    notify_tenant_admins(
        tenant_id=endpoint.tenant_id,
        type="communication",
        event_type="communication.webhook.disabled",
        priority="high",
        title="",
        template="communication.webhook.disabled",
        params={"url": endpoint.url[:120], "reason": reason},
        action_url=f"/{settings.API_PREFIX}webhooks/endpoints/{endpoint.id}",
        metadata={"endpoint_id": endpoint.id, "reason": reason},
    )
