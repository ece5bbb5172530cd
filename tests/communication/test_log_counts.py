"""The maintained log counts agree with COUNT(*) over the log table after every kind of write,
under concurrent writers and folds, and after a repair. Runs on PostgreSQL (statement triggers
and deltas) and on SQLite (row triggers), see the Makefile's SQLite list."""

import random
from datetime import UTC, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count
from django.db.models.functions import Left, TruncDate, TruncHour
from django.utils import timezone

from communication.models import (
    CommunicationLog,
    LogCount,
    LogCountDelta,
    LogTenantCount,
    LogTenantCountDelta,
    LogUserCount,
    LogUserCountDelta,
    LogUserDayCount,
    LogUserDayCountDelta,
    Status,
)
from communication.selectors import _log_count_sums
from communication.services.log_counts import fold_log_counts, recount_logs
from tests.factories import LogFactory, UserFactory

GROUP = ("tenant_id", "hour", "channel", "provider", "status")
LONG_AGO = timezone.now() - timedelta(days=3650)


def counted() -> dict[tuple, int]:
    return {
        key: total["n"] for key, total in _log_count_sums(by=GROUP, tenant_id=None, since=LONG_AGO).items()
    }


def actual() -> dict[tuple, int]:
    rows = (
        CommunicationLog.objects.annotate(hour=TruncHour("created_at"))
        .values(*GROUP)
        .annotate(n=Count("id"))
        .order_by()
    )
    return {tuple(row[column] for column in GROUP): row["n"] for row in rows}


TOTALS = {
    LogUserCount: ("tenant_id", "user_id", "channel", "status", "status_detail"),
    LogTenantCount: ("tenant_id", "channel", "provider", "status", "status_detail"),
    LogUserDayCount: ("tenant_id", "user_id", "day"),
}
DELTAS = {
    LogUserCount: LogUserCountDelta,
    LogTenantCount: LogTenantCountDelta,
    LogUserDayCount: LogUserDayCountDelta,
}


def counted_totals() -> list[dict[tuple, int]]:
    """Each total plus its unfolded deltas, per group, without the groups that sum to zero."""
    found = []
    for model, group in TOTALS.items():
        sums: dict[tuple, int] = {}
        for part in (model, DELTAS[model]):
            for row in part.objects.values(*group, "messages"):
                key = tuple(row[column] for column in group)
                sums[key] = sums.get(key, 0) + row["messages"]
        found.append({key: n for key, n in sums.items() if n})
    return found


def actual_totals() -> list[dict[tuple, int]]:
    return [
        {
            tuple(row[column] for column in group): row["n"]
            for row in CommunicationLog.objects.annotate(day=TruncDate("created_at", tzinfo=UTC))
            .values(*group)
            .annotate(n=Count("id"))
            .order_by()
        }
        for group in TOTALS.values()
    ]


def failure_reasons() -> tuple[dict, dict]:
    counts = _log_count_sums(by=("error",), tenant_id=None, since=LONG_AGO, status=Status.FAILED)
    rows = (
        CommunicationLog.objects.filter(status=Status.FAILED)
        .annotate(reason=Left("error", 200))
        .values("reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {key[0]: total["n"] for key, total in counts.items()}, {
        row["reason"] or "": row["n"] for row in rows
    }


def latency_sum() -> tuple[int, int]:
    totals = _log_count_sums(by=("status",), tenant_id=None, since=LONG_AGO).values()
    return sum(total["latency_ms"] for total in totals), sum(total["latency_n"] for total in totals)


@pytest.fixture
def users(tenant_a, tenant_b):
    return [UserFactory(tenant=tenant) for tenant in (tenant_a, tenant_a, tenant_b)]


def test_every_write_path_keeps_the_counts_equal_to_count_star(users):
    rng = random.Random(20261130)
    now = timezone.now()
    logs = [
        LogFactory(user=rng.choice(users), created_at=now - timedelta(hours=rng.randrange(200)))
        for _ in range(30)
    ]
    CommunicationLog.objects.bulk_create(
        LogFactory.build(user=user, provider="submail", created_at=now - timedelta(minutes=90))
        for user in users * 5
    )
    assert counted() == actual()
    for _step in range(60):
        log = rng.choice(logs)
        move = rng.randrange(6)
        if move == 0:  # a bulk status change, as dispatch and reports make
            CommunicationLog.objects.filter(id__in=[log.id for log in rng.sample(logs, 5)]).update(
                status=Status.SENT, provider=rng.choice(["submail", "aliyun"]), sent_at=now
            )
        elif move == 1:
            CommunicationLog.objects.filter(id=log.id).update(
                status=Status.FAILED,
                status_detail=rng.choice(["rejected", "undelivered", ""]),
                error=rng.choice(["Not delivered: 空号", "Rejected", "x" * 300, None]),
            )
        elif move == 2:
            log.refresh_from_db()
            log.status, log.delivered_at = Status.DELIVERED, now + timedelta(seconds=rng.randrange(1, 90))
            log.sent_at = log.sent_at or now
            log.save()
        elif move == 3:  # moved to another hour and tenant, which nothing does, but the counts follow
            CommunicationLog.objects.filter(id=log.id).update(
                created_at=now - timedelta(hours=rng.randrange(200)), tenant_id=rng.choice(users).tenant_id
            )
        elif move == 4:
            CommunicationLog.objects.filter(id=log.id).update(claimed_at=now)  # no counted field changes
        elif move == 5 and rng.random() < 0.5:  # given to another user, which nothing does either
            CommunicationLog.objects.filter(id=log.id).update(user_id=rng.choice(users).id)
        elif rng.random() < 0.2:
            fold_log_counts()
    CommunicationLog.objects.filter(id__in=[log.id for log in logs[:4]]).delete()
    assert counted() == actual()
    assert counted_totals() == actual_totals()
    reasons, expected_reasons = failure_reasons()
    assert reasons == expected_reasons and len(max(reasons, key=len)) == 200
    delivered = CommunicationLog.objects.filter(status=Status.DELIVERED, sent_at__isnull=False)
    expected_ms = sum(int((log.delivered_at - log.sent_at).total_seconds() * 1000) for log in delivered)
    assert latency_sum() == (expected_ms, delivered.count())
    fold_log_counts()
    assert counted() == actual() and not LogCountDelta.objects.exists()
    assert not LogCount.objects.filter(messages=0).exists()
    assert counted_totals() == actual_totals()
    assert not LogUserCountDelta.objects.exists() and not LogTenantCountDelta.objects.exists()
    assert not LogUserDayCountDelta.objects.exists()
    assert not LogUserCount.objects.filter(messages=0).exists()
    assert not LogUserDayCount.objects.filter(messages=0).exists()
    assert not LogTenantCount.objects.filter(messages=0).exists()


def test_a_rolled_back_write_leaves_no_count(users):
    LogFactory(user=users[0])
    before = counted()
    with pytest.raises(RuntimeError), transaction.atomic():
        LogFactory(user=users[0])
        CommunicationLog.objects.update(status=Status.FAILED)
        raise RuntimeError
    assert counted() == before == actual()
    assert counted_totals() == actual_totals()


def test_recount_repairs_counts_that_went_wrong(users):
    for user in users:
        LogFactory(user=user, status=Status.DELIVERED)
    fold_log_counts()
    LogCount.objects.filter(tenant_id=users[0].tenant_id).update(messages=99)
    LogUserCount.objects.filter(user_id=users[1].id).delete()
    LogUserCountDelta.objects.filter(user_id=users[1].id).delete()
    LogTenantCount.objects.update(messages=7)
    LogUserDayCount.objects.update(messages=3)
    assert counted() != actual() and counted_totals() != actual_totals()
    call_command("recount_logs")
    assert counted() == actual() and counted_totals() == actual_totals()
    call_command("recount_logs", "--fold-only")
    assert counted() == actual()


def test_recount_matches_what_the_triggers_built(users):
    for user in users:
        LogFactory(user=user, status=Status.FAILED, error="Rejected")
    built, built_totals = counted(), counted_totals()
    recount_logs()
    assert counted() == built and counted_totals() == built_totals
