"""Thin Celery wrappers around the pipeline services."""

import random

from celery import shared_task

from authms.idempotency import purge_expired_keys
from communication import services
from communication.status_sync import status_sync_enabled, status_sync_tick


@shared_task(bind=True, max_retries=8, ignore_result=True)
def dispatch_batch(self, batch_id: str):
    """Send a batch's pending logs. Retries (with backoff) only when the provider could not be reached."""
    report = services.dispatch_pending(batch_id=batch_id)
    if report.retry and not self.request.is_eager:  # inline runs leave them to the sweeper
        countdown = min(300, 5 * 2**self.request.retries) + random.uniform(0, 2)
        raise self.retry(countdown=countdown)
    return {"sent": report.sent, "failed": report.failed}


@shared_task(ignore_result=True)
def sweep_pending():
    report = services.sweep_pending()
    return vars(report)


@shared_task(ignore_result=True)
def purge_idempotency_keys():
    return purge_expired_keys()


@shared_task(ignore_result=True)
def purge_receipt_tokens():
    return services.receipt_tokens_purge()


@shared_task(ignore_result=True)
def sync_sms_status():
    """Beat, every minute: one sms/log call per SUBMAIL account (the lock skips extra ticks)."""
    if not status_sync_enabled():
        return None
    run = status_sync_tick(provider_name="submail")
    return None if run is None else {"received": run.received, "applied": run.applied, "error": run.error}
