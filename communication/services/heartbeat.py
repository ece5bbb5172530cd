"""A worker's claims stay fresh while it lives, however long a provider call takes.

A dispatching process registers the messages it has claimed; a daemon thread touches their
`updated_at` every CLAIM_HEARTBEAT_SECONDS. A claim whose `claimed_at` and `updated_at` are
both older than STALE_CLAIM_SECONDS (a few missed beats) therefore belongs to a worker that
is gone (killed, its machine lost), and the sweeper acts on it without waiting out the
longest call any provider might make. `claimed_at` itself stays the hand-over time, which
reconciliation matches the gateway's records against.

Only real workers beat: an inline (eager) dispatch runs inside the request that started it
and cannot be abandoned without its caller noticing.
"""

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from communication.models import CommunicationLog, Status, StatusDetail

logger = logging.getLogger(__name__)


class ClaimHeartbeat:
    def __init__(self):
        self._lock = threading.Lock()
        self._in_flight: dict[int, Sequence[str]] = {}
        self._tokens = itertools.count()
        self._pid: int | None = None  # the process whose thread is running (threads do not survive fork)

    @contextmanager
    def beating(self, log_ids: Sequence[str]) -> Iterator[None]:
        """Keep these logs' claims renewed for the duration of the block."""
        if settings.CLAIM_HEARTBEAT_SECONDS <= 0:
            yield
            return
        with self._lock:
            token = next(self._tokens)
            self._in_flight[token] = log_ids
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="claim-heartbeat", daemon=True).start()
        try:
            yield
        finally:
            with self._lock:
                del self._in_flight[token]

    def _run(self) -> None:
        while True:
            time.sleep(settings.CLAIM_HEARTBEAT_SECONDS)
            with self._lock:
                log_ids = [log_id for ids in self._in_flight.values() for log_id in ids]
            if not log_ids:
                continue
            try:
                self.renew(log_ids)
            except DatabaseError as exc:  # a database that is away costs a beat, not the thread
                logger.warning("Claim heartbeat skipped: %s", exc)
            finally:
                connection.close()  # this thread's own; a beat every few seconds needs no pool

    @staticmethod
    def renew(log_ids: Sequence[str]) -> int:
        """One beat: the claims of these logs are still held by a live worker.

        Rows a dispatch loop is updating at this moment are skipped (SKIP LOCKED), not waited
        for: their hand-over or result is being written, which says as much. Waiting would lock
        the process's claims in another order than the loops do, and PostgreSQL would end one
        of the two statements as a deadlock (seen in `make chaos` with four loops)."""
        with transaction.atomic():
            free = (
                CommunicationLog.objects.select_for_update(skip_locked=True)
                .filter(id__in=log_ids, status=Status.PENDING, claimed_at__isnull=False)
                .exclude(status_detail=StatusDetail.RECONCILING)
                .values("id")
            )
            return CommunicationLog.objects.filter(id__in=free).update(updated_at=timezone.now())


claim_heartbeat = ClaimHeartbeat()
