"""Polling a provider for delivery reports (SUBMAIL's sms/log), one call per minute per account.

A Redis lock (`cache.add`, SET NX with a TTL) lets exactly one worker call per interval,
across all workers. A persisted cursor pages through one time window per pass; consecutive
windows overlap so a carrier report that arrives late is still seen. Reports are applied
in bulk through the forward-only rule, so seeing one twice is harmless.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from communication.models import SyncCursor, SyncRun
from communication.services import reports_apply
from communication.services.reconcile import reconcile_records, reconcile_window_complete
from providers.base import ProviderError
from providers.registry import provider_by_name

logger = logging.getLogger(__name__)

# A little under the provider's interval so a beat tick that fires a few milliseconds
# early is not skipped. A call that lands inside SUBMAIL's minute anyway gets the previous
# query's cached answer back; `ReportPage.answers` recognises it by the window and offset
# the answer echoes, and it is not applied. (Every new window ends at "now", so two passes
# never ask the same window; only a page retried after a failed call repeats a query, and
# then the cached answer is the answer to that very query.)
LOCK_MARGIN_SECONDS = 2


def _lock_key(provider: str, account: str) -> str:
    return f"status-sync:{provider}:{account}"


def status_sync_enabled() -> bool:
    """Polling only makes sense when SMS goes out through SUBMAIL."""
    return settings.CHANNEL_PROVIDERS.get("sms") == "submail"


def status_sync_tick(*, provider_name: str = "submail") -> SyncRun | None:
    """One polling step; None when another call for this account happened within the interval."""
    provider = provider_by_name(provider_name)
    account = provider.account
    if not cache.add(
        _lock_key(provider_name, account), "1", timeout=provider.status_poll_interval - LOCK_MARGIN_SECONDS
    ):
        return None

    now = timezone.now()
    cursor, _ = SyncCursor.objects.get_or_create(provider=provider_name, account=account)
    if cursor.window_done:
        lookback_start = now - timedelta(seconds=settings.STATUS_SYNC_LOOKBACK_SECONDS)
        overlap_start = (
            cursor.window_end - timedelta(seconds=settings.STATUS_SYNC_OVERLAP_SECONDS)
            if cursor.window_end
            else lookback_start
        )
        cursor.window_start, cursor.window_end = max(lookback_start, overlap_start), now
        cursor.offset, cursor.total = 0, None

    run = SyncRun(
        provider=provider_name,
        account=account,
        started_at=now,
        window_start=cursor.window_start,
        window_end=cursor.window_end,
        offset=cursor.offset,
    )
    try:
        page = provider.fetch_status_reports(
            start=cursor.window_start,
            end=cursor.window_end,
            offset=cursor.offset,
            rows=settings.STATUS_SYNC_ROWS,
        )
    except ProviderError as exc:
        logger.warning("Status sync for %s:%s failed: %s", provider_name, account, exc.message)
        run.error = exc.message
        run.save()
        cursor.save()
        return run

    if not page.answers(offset=cursor.offset):
        run.error = "The provider served a cached page (called within its minute); nothing applied."
    else:
        # Settle unknown outcomes first, so this page's reports then reach them too.
        settled = reconcile_records(provider=provider_name, records=page.records)
        applied = reports_apply(page.reports)
        run.received, run.applied, run.unknown = page.returned, applied.applied + settled, applied.unknown
        cursor.offset += page.returned
        cursor.total = page.total if page.returned else cursor.offset  # an empty page ends the window
        if cursor.window_done:
            reconcile_window_complete(
                provider=provider_name, window_start=cursor.window_start, window_end=cursor.window_end
            )
    cursor.last_run_at = now
    cursor.save()
    run.save()
    return run
