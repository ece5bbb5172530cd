"""Polling providers for delivery reports (SUBMAIL's sms/log), one call per interval per account.

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
from communication.services.reconcile import (
    MATCH_BEFORE,
    reconcile_records,
    reconcile_window_complete,
    reconciling_hand_overs,
)
from providers.base import ProviderError
from providers.registry import provider_by_name, providers_in_use

logger = logging.getLogger(__name__)

# A little under the provider's interval so a beat tick that fires a few milliseconds
# early is not skipped. A call that lands inside SUBMAIL's minute anyway gets the previous
# query's cached answer back; `ReportPage.answers` recognises it by the window and offset
# the answer echoes, and it is not applied. (Every new window ends at "now", so two passes
# never ask the same window; only a page retried after a failed call repeats a query, and
# then the cached answer is the answer to that very query.)
LOCK_MARGIN_SECONDS = 2

# The focused pass's cursor is kept beside the general one, under the account name plus this.
FOCUSED_SUFFIX = "/reconcile"
# A request reaches the gateway at most this long after its hand-over (SUBMAIL's clock lookup
# and send, 2 x (3 + 15) s, plus clock skew): the focused window ends this long after the last.
FOCUSED_WINDOW_AFTER = timedelta(seconds=60)


def _lock_key(provider: str, account: str) -> str:
    return f"status-sync:{provider}:{account}"


def pollable_providers() -> list[str]:
    """The providers in use (on any channel's route) that report delivery by being polled."""
    return [name for name in providers_in_use() if _polls(name)]


def _polls(name: str) -> bool:
    try:
        return bool(provider_by_name(name).status_poll_interval)
    except LookupError:
        return False


def status_sync_enabled() -> bool:
    return bool(pollable_providers())


def status_sync_all() -> list[SyncRun]:
    """One polling step for every pollable provider whose interval allows a call now."""
    return [run for name in pollable_providers() if (run := status_sync_tick(provider_name=name))]


def _focused_window(provider_name: str, account: str, now) -> SyncCursor | None:
    """The cursor of a pass over just the stretch of time in which messages now held for
    reconciliation were handed over (their records are what settles them), or None when no
    message was held since the last such pass began. Messages held while one is under way
    wait for the next: since it began, not since its last page, or a second crash during a
    pass would be left to the general pass's hours of records."""
    key = {"provider": provider_name, "account": f"{account}{FOCUSED_SUFFIX}"}
    cursor = SyncCursor.objects.filter(**key).first()
    if cursor is not None and not cursor.window_done:
        return cursor
    held = reconciling_hand_overs(provider=provider_name, held_after=cursor and cursor.window_opened_at)
    if held is None:
        return None
    cursor = cursor or SyncCursor(**key)
    first, last = held
    cursor.window_start = first - MATCH_BEFORE
    cursor.window_end = min(now, last + FOCUSED_WINDOW_AFTER)
    cursor.offset, cursor.total, cursor.window_opened_at = 0, None, now
    return cursor


def _general_window(provider_name: str, account: str, now) -> SyncCursor:
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
    return cursor


def status_sync_tick(*, provider_name: str) -> SyncRun | None:
    """One polling step; None when another call for this account happened within the interval.

    Messages held for reconciliation are asked about first, in a focused pass over the
    seconds around their hand-over; otherwise the general pass walks its overlapping windows.
    Only a general window read whole may conclude that a held message was never accepted."""
    provider = provider_by_name(provider_name)
    account = provider.account
    if not cache.add(
        _lock_key(provider_name, account), "1", timeout=provider.status_poll_interval - LOCK_MARGIN_SECONDS
    ):
        return None

    now = timezone.now()
    focused = _focused_window(provider_name, account, now)
    cursor = focused or _general_window(provider_name, account, now)

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
        if cursor.window_done and focused is None:
            reconcile_window_complete(
                provider=provider_name, window_start=cursor.window_start, window_end=cursor.window_end
            )
    cursor.last_run_at = now
    cursor.save()
    run.save()
    return run
