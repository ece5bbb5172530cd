"""The claim stays fast after a burst of pending rows, whatever the planner's statistics say.

After a burst the statistics can still say few rows are pending; the claim once chose a
pending-only index on created_at then, and sorted every pending row (209 ms instead of
13.7 ms, measured at 500,000; the test runs at 200,000 to keep the suite short: the seed took
half a minute at 500,000). Now every index a claim could use yields rows in id order (`log_claimable`,
`log_batch`), so before and after ANALYZE the plan is an ordered scan that stops after the
LIMIT, without a sort. With the log table partitioned by month the order comes from merging
each partition's index; with stale statistics the planner sorted instead (282 ms), so the
claim runs with sorting off.
"""

import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from communication.services.dispatch import claimable

ROWS = 200_000
HISTORY = 120_000

pytestmark = pytest.mark.integration


@pytest.fixture
def burst(alice, on_postgres):
    if not on_postgres:
        pytest.skip("the plan under test is PostgreSQL's")
    insert = """
        INSERT INTO communication_log (id, tenant_id, user_id, channel, provider, recipient, subject,
            content, status, attempts, created_at, updated_at, batch_id)
        SELECT 'log_' || lpad((%s + n)::text, 26, '0'), %s, %s, 'sms', 'console', '+8613800138000', '',
            'x', %s, 0, now(), now(), %s
        FROM generate_series(1, %s) AS n
    """
    with connection.cursor() as cursor:
        # History first (sent, older ids), analysed: the statistics say nothing is pending…
        cursor.execute(insert, [0, alice.tenant_id, alice.id, "sent", "bat_OLD", HISTORY])
        cursor.execute("ANALYZE communication_log")
        # …then the burst, with newer ids, before autovacuum has looked.
        cursor.execute(insert, [HISTORY, alice.tenant_id, alice.id, "pending", "bat_BURST", ROWS])
    return "bat_BURST"


def _plan_and_time(batch_id):
    """The claim as the dispatcher runs it on PostgreSQL: the chosen rows' ids in the claim's
    transaction, chosen with sorting off (dispatch._claim_in_one_transaction)."""
    chosen = claimable(batch_id=batch_id, now=timezone.now(), locked=False).values("id")[:100]
    sql, params = chosen.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql} FOR UPDATE SKIP LOCKED", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        started = time.perf_counter()
        cursor.execute(f"{sql} FOR UPDATE SKIP LOCKED", params)
        assert len(cursor.fetchall()) == 100
        return plan, time.perf_counter() - started


def test_the_claim_reads_the_claim_index_in_order_with_stale_and_fresh_statistics(burst):
    stale_plan, stale_seconds = _plan_and_time(burst)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE communication_log")
    fresh_plan, fresh_seconds = _plan_and_time(burst)
    print(
        f"\nstale: {stale_seconds * 1000:.1f} ms\n{stale_plan}\nfresh: {fresh_seconds * 1000:.1f} ms\n{fresh_plan}"
    )
    for plan in (stale_plan, fresh_plan):
        assert "Sort  (" not in plan and "Merge Append" in plan, plan  # merged in order, never sorted
    assert stale_seconds < 0.05 and fresh_seconds < 0.05, (stale_seconds, fresh_seconds)
