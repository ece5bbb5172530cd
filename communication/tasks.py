"""Thin Celery wrappers around the pipeline services."""

from celery import shared_task
from django.conf import settings

from authms.idempotency import purge_expired_keys
from communication import services
from communication.services import events, log_counts, webhooks
from communication.services import log_partitions as log_partitions_service
from communication.services.health import providers_health_check
from communication.services.reconcile import reconcile_by_lookup
from communication.status_sync import status_sync_all
from providers.registry import providers_in_use


@shared_task(bind=True, ignore_result=True)
def dispatch_batch(self, batch_id: str):
    """Send a batch's due logs for at most DISPATCH_TASK_SECONDS, then hand over to a new task
    (a warm shutdown waits for one chunk, not a whole batch); wake up again when the next
    retry is due. Inline runs finish the batch and leave retries to the sweeper."""
    eager = self.request.is_eager
    report = services.dispatch_pending(
        batch_id=batch_id, time_budget=None if eager else settings.DISPATCH_TASK_SECONDS, heartbeat=not eager
    )
    if not eager:
        if report.out_of_time:
            services.enqueue_dispatch(batch_id, 1)
        elif report.next_due_at is not None:
            services.enqueue_dispatch(batch_id, 1, eta=report.next_due_at)
    else:  # the embedded run has no beat: its events go out to webhooks after each dispatch
        sequence_events()
    return {"sent": report.sent, "failed": report.failed, "retry": report.retry}


@shared_task(ignore_result=True)
def sweep_pending():
    """Beat, every 15 s. Messages a dead worker left with the gateway are asked about at once
    (the status sync's per-minute lock still decides whether a call may go out now); gateways
    searchable per message are asked about every held message."""
    report = services.sweep_pending()
    if report.held:
        status_sync_all()
    report.looked_up = reconcile_by_lookup()
    return vars(report)


@shared_task(ignore_result=True)
def purge_idempotency_keys():
    return purge_expired_keys()


@shared_task(ignore_result=True)
def purge_receipt_tokens():
    return services.receipt_tokens_purge()


@shared_task(ignore_result=True)
def sync_delivery_status():
    """Beat, every minute: one report call per pollable provider account (a lock per account
    skips ticks inside the provider's interval)."""
    return [
        {"provider": run.provider, "received": run.received, "applied": run.applied, "error": run.error}
        for run in status_sync_all()
    ]


@shared_task(ignore_result=True)
def apply_pushed_reports(kept: int | list[dict]):
    """Receipts a provider pushed, applied off the request (the provider wants its answer
    fast). The request kept them (`PushedReports`); if this task is lost with its worker or
    the broker, the sweeper applies them. A list: a task queued by a version that passed the
    reports themselves."""
    if isinstance(kept, list):
        return services.reports_apply([services.report_from_dict(report) for report in kept]).applied
    return services.pushed_reports_apply(kept_id=kept)


@shared_task(ignore_result=True)
def check_provider_health():
    """Beat, every 30 s: switch providers out of or back into rotation."""
    return providers_health_check(providers_in_use())


@shared_task(ignore_result=True)
def fold_log_counts():
    """Beat, every 30 s: the dashboard's count deltas into the counts (PostgreSQL)."""
    return log_counts.fold_log_counts()


@shared_task(ignore_result=True)
def sequence_events():
    """Beat, every 2 s: number committed events, freeze their bodies, fan them out to webhooks."""
    total = 0
    while count := events.events_sequence():
        total += count
    return total


@shared_task(ignore_result=True)
def send_webhooks():
    """Beat, every 2 s (and kicked after sequencing): post the due webhook deliveries."""
    total = 0
    while count := webhooks.deliveries_send():
        total += count
    return total


@shared_task(ignore_result=True)
def log_partitions():
    """Beat, hourly: next months' log partitions made, logs past LOG_RETENTION_DAYS purged."""
    log_partitions_service.ensure_log_partitions()
    return log_partitions_service.purge_logs()


@shared_task(ignore_result=True)
def purge_events():
    """Beat, hourly: events past EVENTS_RETENTION (their deliveries and attempts with them)."""
    return events.events_purge()
