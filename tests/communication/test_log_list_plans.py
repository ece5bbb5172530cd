"""Every documented filter of both log lists reads an index at 1,000,000 logs (#20 item 2).

Each request goes through the real URL stack; every query it makes of the log table is then run
again under EXPLAIN ANALYZE. A plan fails if it reads the log table sequentially, or reads rows
of it only to throw them away ("Rows Removed by Filter") by the thousand: that is a scan of the
tenant's logs, which costs in proportion to the tenant's size, not the page's. PostgreSQL only
(the embedded SQLite run has no planner worth the name at this size)."""

import json
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authms.api.cursor import encode_cursor
from authms.api.pagination import DEFERRED_OFFSET
from authms.compiled_queries import STATEMENT_SEPARATOR
from authms.roles import make_tenant_admin
from communication.models import CommunicationLog
from communication.selectors import HOUR_SKIP_OFFSET
from communication.services.log_partitions import log_partitions
from tests.log_seed import seed_logs

pytestmark = pytest.mark.skipif("connection.vendor != 'postgresql'")

ROWS = 1_000_000
# The most rows one query may read and discard: a page's worth of a rare status among one user's
# logs is a few hundred; a scan of the tenant's logs would be hundreds of thousands.
MOST_DISCARDED = 2_000
USER_URL = "/api/v1/communication/logs"
ADMIN_URL = "/api/v1/admin/communication/logs"


def _log_tables_with_rows() -> set[str]:
    """The log table's partitions holding any row: a sequential scan of an empty month
    partition reads nothing, and the planner rightly picks one there."""
    with connection.cursor() as cursor:
        found = set()
        for name, *_bounds in log_partitions():
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name})")  # noqa: S608 (our partitions)
            if cursor.fetchone()[0]:
                found.add(name)
        return found


def _log_table_scans(plan: dict, tables: set[str]):
    """The plan's nodes that read one of `tables` (indexes or heap)."""
    if plan.get("Relation Name") in tables:
        yield plan
    for child in plan.get("Plans", []):
        yield from _log_table_scans(child, tables)


def _plan_faults(sql: str, tables: set[str]) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    faults = []
    for node in _log_table_scans(plan, tables):
        discarded = node.get("Rows Removed by Filter", 0) * node.get("Actual Loops", 1)
        if node["Node Type"] == "Seq Scan" or discarded > MOST_DISCARDED:
            faults.append(f"{node['Node Type']} {node.get('Index Name', '')} discarding {discarded:,} rows")
    return faults


def _reads_the_log_table(sql: str) -> bool:
    """A SELECT of the log table, or the EXECUTE of one prepared (authms.compiled_queries): its
    EXPLAIN shows the generic plan the session runs it with."""
    if sql.startswith("EXECUTE "):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT statement FROM pg_prepared_statements WHERE name = %s",
                [sql.removeprefix("EXECUTE ").split("(")[0]],
            )
            sql = cursor.fetchone()[0].split(" AS ", 1)[1]
    return '"communication_log"' in sql and sql.lstrip().upper().startswith("SELECT")


def _deep_cursor(queryset, depth: int) -> str:
    """A cursor `depth` rows into the list (or half way, if it is shorter)."""
    total = queryset[: depth + 1].count()
    created_at, row_id = queryset.values_list("created_at", "id")[min(depth, total // 2)]
    return encode_cursor(created_at, row_id)


@pytest.fixture
def seeded(db):
    """1M logs seeded in bulk (the test's transaction rolls them back), analysed as autovacuum would."""
    tenants, users, admin = seed_logs(ROWS, bulk=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE communication_log")
    make_tenant_admin(admin)
    return tenants, users, admin


def test_every_filter_of_both_lists_reads_an_index_at_a_million_logs(seeded, client_for):
    tenants, users, admin = seeded
    mine = CommunicationLog.objects.filter(tenant=tenants[0])
    now = timezone.now()
    sample = mine.filter(channel="sms", batch_id__isnull=False).values("recipient", "batch_id", "user_id")[0]
    user = next(user for user in users if user.id == sample["user_id"])
    common = {
        "channel=email": {"channel": "email"},
        "status=failed": {"status": "failed"},
        "status_detail=rejected": {"status_detail": "rejected"},
        "batch_id": {"batch_id": sample["batch_id"]},
        "created_after (1 day)": {"created_after": (now - timedelta(days=1)).isoformat()},
        "created_before (5 days)": {"created_before": (now - timedelta(days=5)).isoformat()},
        "created between": {
            "created_after": (now - timedelta(days=6)).isoformat(),
            "created_before": (now - timedelta(days=5)).isoformat(),
        },
    }
    admin_only = {
        "user_id": {"user_id": sample["user_id"]},
        "provider=aliyun": {"provider": "aliyun"},
        "recipient": {"recipient": sample["recipient"]},
    }
    lists = [
        ("user", user, USER_URL, CommunicationLog.objects.filter(user=user), {"unfiltered": {}, **common}),
        ("admin", admin, ADMIN_URL, mine, {"unfiltered": {}, **common, **admin_only}),
    ]
    faults, checked, tables = [], Counter(), _log_tables_with_rows()
    assert tables, "the logs are in the partitions"
    for who, actor, url, visible, cases in lists:
        client = client_for(actor)
        for label, filters in cases.items():
            matching = visible.filter(  # what the list shows, to find a row deep in it
                **{
                    {"created_after": "created_at__gte", "created_before": "created_at__lt"}.get(
                        name, name
                    ): value
                    for name, value in filters.items()
                }
            )
            modes = {"page 1": {"page": "1"}, "first cursor": {"cursor": ""}}
            if matching[:41].count() > 40:  # a third page and a deep cursor have rows
                modes |= {"page 3": {"page": "3"}, "deep cursor": {"cursor": _deep_cursor(matching, 100_000)}}
            # A deep page (ids first; the admin list's past the hours its counts skip, prepared
            # with its OFFSET a parameter: the generic plan is checked).
            deep = HOUR_SKIP_OFFSET if who == "admin" else DEFERRED_OFFSET
            if matching[: deep + 21].count() > deep + 20:
                modes["deep page"] = {"page": str(deep // 20 + 1)}
            for mode_name, mode in modes.items():
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(url, {**filters, **mode, "page_size": "20"})
                assert response.status_code == 200, (who, label, response.content[:300])
                assert response.json()["items"], (who, label, mode)  # a plan of nothing proves nothing
                statements = [
                    sql
                    for query in queries.captured_queries
                    for sql in query["sql"].split(STATEMENT_SEPARATOR)  # a page and its total: one query
                ]
                for sql in statements:
                    if _reads_the_log_table(sql):
                        checked[mode_name] += 1
                        faults += [
                            f"{who}, {label}, {mode_name}: {fault}" for fault in _plan_faults(sql, tables)
                        ]
    assert checked.total() >= 60 and checked["deep page"] >= 6, checked
    assert not faults, "\n".join(faults)
