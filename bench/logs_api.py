"""The log lists at 10,000,000 rows: ours against the exact-COUNT paginator and stock DRF.

    make bench BENCH=logs_api                               # 10,000,000 logs (~10 minutes)
    make bench BENCH=logs_api BENCH_ARGS=--rows=1000000     # quicker

Seeds 2 tenants × 500 users (tests/log_seed.py, one INSERT … SELECT generate_series, indexes
built after), then times each request through the real URL stack with real JWTs (Django test
client, in process), against, in the same run:
- the exact-COUNT paginator: our own views, but every page counts all matching rows;
- stock DRF: ListAPIView + django-filter + ModelSerializer + PageNumberPagination over the
  same table and indexes.
Then deep pages (page 5,000, a cursor 100,000 rows deep) against page 1.

The requests compared with each other are timed in turn (bench.common.time_interleaved: ours
ten times, then each baseline once; page 1, then each deep page), so a slow spell of the
machine weighs on all of them alike.
"""

import argparse
from datetime import timedelta
from functools import partial

from bench.common import migrate, print_table, settle_log_table, setup_django, time_interleaved

setup_django(urlconf="bench.urls")

from django.utils import timezone
from rest_framework.test import APIClient

from authms.api.cursor import encode_cursor
from authms.roles import make_tenant_admin
from communication.models import CommunicationLog
from tests.conftest import access_token_for
from tests.log_seed import seed_logs

USER_URL, ADMIN_URL = "/api/v1/communication/logs", "/api/v1/admin/communication/logs"
BASELINES = {
    USER_URL: ("/bench/exact-count/logs", "/bench/stock/logs"),
    ADMIN_URL: ("/bench/exact-count/admin-logs", "/bench/stock/admin-logs"),
}


def seed(rows: int):
    tenants, users, admin = seed_logs(rows, bulk=True)
    settle_log_table()  # the seed's dead rows and dirty pages dealt with before timing, not during it
    make_tenant_admin(admin)
    return tenants, users, admin


def client(who) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(who)}")
    return api


def fetch(api, url, params) -> dict:
    response = api.get(url, params)
    assert response.status_code == 200 and response.json()["items"], (url, params, response.content[:300])
    return response.json()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--baseline-repeat", type=int, default=20)
    args = parser.parse_args()

    migrate()
    print(f"Seeding {args.rows:,} logs …", flush=True)
    tenants, users, admin = seed(args.rows)
    mine = CommunicationLog.objects.filter(tenant=tenants[0])
    sample = mine.filter(channel="sms", batch_id__isnull=False).values("recipient", "batch_id", "user_id")[0]
    user = next(user for user in users if user.id == sample["user_id"])
    as_user, as_admin = client(user), client(admin)
    now = timezone.now()
    oldest = mine.order_by("created_at").values_list("created_at", flat=True)[0]
    filters = {
        "unfiltered": {},
        "channel=email": {"channel": "email"},
        "status=failed": {"status": "failed"},
        "status_detail=rejected": {"status_detail": "rejected"},
        "batch_id": {"batch_id": sample["batch_id"]},
        "created_after (1 day)": {"created_after": (now - timedelta(days=1)).isoformat()},
        "created_before (older half)": {"created_before": (oldest + (now - oldest) / 2).isoformat()},
    }
    admin_only = {
        "user_id": {"user_id": user.id},
        "provider=aliyun": {"provider": "aliyun"},
        "recipient": {"recipient": sample["recipient"]},
    }
    cases = [("user", as_user, USER_URL, name, params) for name, params in filters.items()]
    cases += [
        ("admin", as_admin, ADMIN_URL, name, params) for name, params in {**filters, **admin_only}.items()
    ]

    rows = []
    for who, api, url, name, params in cases:
        ours_body = fetch(api, url, params)
        exact_url, stock_url = BASELINES[url]
        exact_count = fetch(api, exact_url, params)["total"]
        stock_count = api.get(stock_url, params).json()["count"]
        capped = ours_body["total_is_capped"]
        assert exact_count == stock_count and (capped or ours_body["total"] == exact_count), (
            name,
            ours_body["total"],
            exact_count,
        )
        timed = time_interleaved(
            {
                "ours": (partial(api.get, url, params), max(1, args.repeat // args.baseline_repeat)),
                "exact": (partial(api.get, exact_url, params), 1),
                "stock": (partial(api.get, stock_url, params), 1),
            },
            rounds=args.baseline_repeat,
        )
        ours, exact, stock = timed["ours"], timed["exact"], timed["stock"]
        rows.append(
            [
                f"{who}, {name}",
                f"{exact_count:,}",
                "≥10,000" if capped else "exact",
                f"{ours['p50']:.1f}",
                f"{ours['p95']:.1f}",
                f"{exact['p95']:.1f}",
                f"{exact['p95'] / ours['p95']:.1f}x",
                f"{stock['p95']:.1f}",
                f"{stock['p95'] / ours['p95']:.1f}x",
            ]
        )
    print(
        f"\nLog lists, {args.rows:,} logs, PostgreSQL, page 1 of 20, ms (ours n={args.repeat}, baselines n={args.baseline_repeat})"
    )
    print_table(
        [
            "list, filter",
            "matching",
            "our total",
            "ours p50",
            "ours p95",
            "exact-COUNT p95",
            "exact/ours",
            "stock DRF p95",
            "stock/ours",
        ],
        rows,
    )
    deep_pages(as_admin, mine, args)


def deep_pages(api, visible, args):
    """Page 5,001 and a cursor 100,000 rows deep against page 1 (the admin list, unfiltered and by status)."""
    rows = []
    for name, params, matching in (
        ("unfiltered", {}, visible),
        ("status=failed", {"status": "failed"}, visible.filter(status="failed")),
    ):
        depth = min(100_000, matching.count() - 20)  # in a smaller run, as deep as the list goes
        created_at, row_id = matching.values_list("created_at", "id")[depth]
        deep_params = {
            f"page {depth // 20 + 1:,}": {"page": depth // 20 + 1},
            f"cursor {depth:,} deep": {"cursor": encode_cursor(created_at, row_id)},
        }
        for deep in deep_params.values():
            fetch(api, ADMIN_URL, {**params, **deep})
        timed = time_interleaved(
            {
                "page 1": (partial(api.get, ADMIN_URL, params), 1),
                **{
                    label: (partial(api.get, ADMIN_URL, {**params, **deep}), 1)
                    for label, deep in deep_params.items()
                },
            },
            rounds=args.repeat,
        )
        first = timed["page 1"]
        rows += [
            [
                f"admin, {name}, {label}",
                f"{first['p50']:.1f}",
                f"{first['p95']:.1f}",
                f"{timed[label]['p50']:.1f}",
                f"{timed[label]['p95']:.1f}",
                f"{timed[label]['p50'] / first['p50']:.2f}x",
                f"{timed[label]['p95'] / first['p95']:.2f}x",
            ]
            for label in deep_params
        ]
    print(f"\nDeep pages (20 rows), ms (n={args.repeat}, each timed in turn with page 1)")
    print_table(
        ["page", "page 1 p50", "page 1 p95", "deep p50", "deep p95", "deep/page 1 p50", "deep/page 1 p95"],
        rows,
    )


if __name__ == "__main__":
    main()
