"""Monthly partitions of the log table and the retention purge (#20 item 4).

PostgreSQL: the table is partitioned by month of created_at (the legacy partition holds what
was there before), logs outside every month wait in the default partition until their month is
made, and the purge drops whole expired months. Both databases: the purge keeps the maintained
counts exact and takes a log's delivery attempts and email events with it."""

import importlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from communication.models import CommunicationLog, DeliveryAttempt, EmailEvent
from communication.services.log_partitions import (
    DEFAULT,
    LEGACY,
    ensure_log_partitions,
    log_partitions,
    month_partition_name,
    month_start,
    next_month,
    purge_logs,
)
from tests.communication.test_log_counts import actual, actual_totals, counted, counted_totals
from tests.factories import LogFactory, UserFactory

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'")


def partition_of(log) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM communication_log WHERE id = %s", [log.id])
        return cursor.fetchone()[0]


def counts_are_exact() -> bool:
    return counted() == actual() and counted_totals() == actual_totals()


@postgres_only
def test_the_log_table_is_partitioned_by_month_with_legacy_and_default_partitions(tenant_a, settings):
    this_month = month_start(timezone.now())
    months = [next_month(this_month)]
    for _ in range(settings.LOG_PARTITION_MONTHS_AHEAD - 1):
        months.append(next_month(months[-1]))
    partitions = {name: (lower, upper) for name, lower, upper in log_partitions()}
    assert partitions[LEGACY] == (None, months[0])
    assert partitions[DEFAULT] == (None, None)
    for start in months:
        assert partitions[month_partition_name(start)] == (start, next_month(start))
    assert len(partitions) == 2 + len(months)
    user = UserFactory(tenant=tenant_a)
    assert partition_of(LogFactory(user=user)) == LEGACY
    later = LogFactory(user=user, created_at=months[0] + timedelta(days=3))
    assert partition_of(later) == month_partition_name(months[0])
    # Found and changed by id alone, as every status update does.
    CommunicationLog.objects.filter(id=later.id).update(status="sent")
    assert CommunicationLog.objects.get(id=later.id).status == "sent" and counts_are_exact()


def assert_each_partition_has_the_partial_indexes():
    """Every partition has the provider message id and template indexes, valid, with their
    conditions, attached to the parent's (so a month made later gets them too)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, parent.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
            FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_inherits h ON h.inhrelid = i.indexrelid JOIN pg_class parent ON parent.oid = h.inhparent
            WHERE parent.relname IN ('log_provider_message_id', 'log_template')
            """
        )
        rows = cursor.fetchall()
    partitions = {name for name, _start, _end in log_partitions()}
    for parent, column in (
        ("log_provider_message_id", "provider_message_id"),
        ("log_template", "template_id"),
    ):
        built = {table: (definition, valid) for table, of, definition, valid in rows if of == parent}
        assert set(built) == partitions
        for definition, valid in built.values():
            assert valid and definition.endswith(f"({column}) WHERE ({column} IS NOT NULL)")


@postgres_only
def test_each_partition_has_the_partial_indexes_valid_and_attached(db):
    """Migration 0030 built them partition by partition (concurrently) under an index ON ONLY
    the parent."""
    assert_each_partition_has_the_partial_indexes()


@postgres_only
def test_migration_0030_run_again_after_an_interruption_keeps_what_it_built_and_builds_the_rest(
    transactional_db,
):
    """`migrate` again after a stop: a finished index is kept, one never built is built, and a
    half-built leftover is dropped (CONCURRENTLY cannot run in a transaction, hence the
    transactional database)."""
    migration = importlib.import_module("communication.migrations.0030_fewer_index_entries")
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX log_template")  # never built
        cursor.execute("CREATE INDEX event_tenant_feed_new ON communication_event (seq)")  # half built
        cursor.execute("SELECT oid FROM pg_class WHERE relname = 'log_provider_message_id'")
        finished = cursor.fetchone()
    migration.build_indexes_concurrently(None, SimpleNamespace(connection=connection))
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_class WHERE relname = 'log_provider_message_id'")
        assert cursor.fetchone() == finished
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname IN ('log_template', 'event_tenant_feed_new')"
        )
        assert cursor.fetchall() == [("log_template",)]
    assert_each_partition_has_the_partial_indexes()


@postgres_only
def test_a_log_past_every_month_waits_in_the_default_partition_until_its_month_is_made(tenant_a):
    user = UserFactory(tenant=tenant_a)
    far = LogFactory(user=user, created_at=timezone.now() + timedelta(days=250), status="delivered")
    assert partition_of(far) == DEFAULT
    made = ensure_log_partitions(months_ahead=10)
    home = month_partition_name(month_start(far.created_at))
    assert home in made and partition_of(far) == home
    assert CommunicationLog.objects.get(id=far.id).status == "delivered" and counts_are_exact()
    assert ensure_log_partitions(months_ahead=10) == []  # nothing left to make


@postgres_only
def test_the_purge_drops_expired_months_whole_and_deletes_the_legacy_partitions_rows(tenant_a, tenant_b):
    now = timezone.now()
    first_month = next_month(month_start(now))
    users = [UserFactory(tenant=tenant) for tenant in (tenant_a, tenant_b)]
    ancient = LogFactory(user=users[0], created_at=now - timedelta(days=400), status="failed")
    recent = LogFactory(user=users[1], created_at=now - timedelta(days=2), status="delivered")
    in_first = LogFactory(user=users[0], created_at=first_month + timedelta(days=1), channel="email")
    in_second = LogFactory(user=users[1], created_at=next_month(first_month) + timedelta(days=1))
    DeliveryAttempt.objects.create(log=in_first, provider="submail", error="down")
    EmailEvent.objects.create(
        log=in_first, tenant=tenant_a, esp="postmark", kind="opened", recipient="a@b.c", at=now
    )
    DeliveryAttempt.objects.create(log=ancient, provider="submail", error="down")

    assert purge_logs(older_than=timedelta(days=365)) == 1  # the ancient log, from the legacy partition
    assert not CommunicationLog.objects.filter(id=ancient.id).exists() and counts_are_exact()
    assert not DeliveryAttempt.objects.filter(log_id=ancient.id).exists()
    assert {name for name, *_ in log_partitions()} >= {LEGACY, month_partition_name(first_month)}

    # A cutoff a day past the first month: the legacy partition and that month go, whole.
    past_first_month = next_month(first_month) + timedelta(days=1)
    assert purge_logs(older_than=now - past_first_month) == 2
    left = {name for name, *_ in log_partitions()}
    assert LEGACY not in left and month_partition_name(first_month) not in left
    assert list(CommunicationLog.objects.values_list("id", flat=True)) == [in_second.id]
    assert not DeliveryAttempt.objects.exists() and not EmailEvent.objects.exists()
    assert counts_are_exact() and sum(counted().values()) == 1
    assert recent.id not in set(CommunicationLog.objects.values_list("id", flat=True))


def test_the_purge_deletes_logs_past_the_retention_and_keeps_counts_exact(tenant_a, settings):
    """Both databases: by batches of PURGE_BATCH (SQLite; PostgreSQL's legacy partition)."""
    user = UserFactory(tenant=tenant_a)
    now = timezone.now()
    old = [
        LogFactory(user=user, created_at=now - timedelta(days=40 + n), status="delivered") for n in range(3)
    ]
    kept = LogFactory(user=user, created_at=now - timedelta(days=5))
    DeliveryAttempt.objects.create(log=old[0], provider="submail", error="down")
    settings.LOG_RETENTION_DAYS = 0
    assert purge_logs() == 0 and CommunicationLog.objects.count() == 4  # off: kept forever
    settings.LOG_RETENTION_DAYS = 30
    call_command("purge_logs")
    assert list(CommunicationLog.objects.values_list("id", flat=True)) == [kept.id]
    assert not DeliveryAttempt.objects.exists() and counts_are_exact()
    call_command("purge_logs", "--older-than", "1d")
    assert not CommunicationLog.objects.exists() and counts_are_exact()
