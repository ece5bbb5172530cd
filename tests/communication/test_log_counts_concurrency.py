"""The maintained log counts stay exact under concurrent writers and folds (PostgreSQL: the
statement triggers' deltas and the fold's DELETE … RETURNING; SQLite has one writer)."""

import random
import threading

import pytest
from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from communication.models import CommunicationLog, LogCount, LogCountDelta, Status
from communication.services.log_counts import fold_log_counts
from tests.communication.test_log_counts import actual, actual_totals, counted, counted_totals
from tests.factories import LogFactory, UserFactory


@pytest.mark.django_db(transaction=True)
def test_concurrent_status_updates_and_folds_stay_exact(tenant_a, tenant_b):
    """Four writers move their own logs through the statuses in small transactions while a
    fifth thread folds deltas; then the counts equal COUNT(*)."""
    users = [UserFactory(tenant=tenant) for tenant in (tenant_a, tenant_b)]
    ids = [[LogFactory(user=users[n % 2]).id for _ in range(40)] for n in range(4)]
    failures, stop = [], threading.Event()

    def writer(mine, seed):
        rng = random.Random(seed)
        try:
            for _ in range(60):
                chosen = rng.sample(mine, 8)
                with transaction.atomic():
                    CommunicationLog.objects.filter(id__in=chosen).update(
                        status=rng.choice(Status.values),
                        provider=rng.choice(["submail", "aliyun"]),
                        channel=rng.choice(["sms", "email"]),
                    )
        except Exception as error:
            failures.append(error)
        finally:
            connection.close()

    def folder():
        try:
            while not stop.is_set():
                fold_log_counts()
        except Exception as error:
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(mine, n)) for n, mine in enumerate(ids)]
    folding = threading.Thread(target=folder)
    folding.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    folding.join()
    assert not failures
    assert counted() == actual()
    assert counted_totals() == actual_totals()
    assert sum(counted().values()) == sum(counted_totals()[0].values()) == 160
    totals = CommunicationLog.objects.aggregate(failed=Count("id", filter=Q(status=Status.FAILED)))
    failed = LogCount.objects.filter(status=Status.FAILED).aggregate(n=Sum("messages"))["n"] or 0
    pending = LogCountDelta.objects.filter(status=Status.FAILED).aggregate(n=Sum("messages"))["n"] or 0
    assert failed + pending == totals["failed"]
