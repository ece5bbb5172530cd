"""Logs API at 1,000,000 rows: our endpoints against a stock DRF ListAPIView baseline.

    make bench BENCH=logs_api                 # 1,000,000 logs (about 2-3 minutes)
    make bench BENCH=logs_api BENCH_ARGS=--rows=200000

Seeds 2 tenants × 500 users × (rows/1000) logs with one INSERT … SELECT generate_series,
copies them into an index-less table for the baseline, then times each request through
the real URL stack with real JWTs (Django test client, in process) and prints p50/p95 and
the ratio baseline/ours.
"""

import argparse
from functools import partial

from bench.common import migrate, print_table, setup_django, time_calls

setup_django(urlconf="bench.urls")

from django.db import connection
from rest_framework.test import APIClient

from tests.conftest import access_token_for
from tests.log_seed import USERS_PER_TENANT, seed_logs


def seed(rows: int, *, plain_copy: bool = True):
    tenants, users, admin = seed_logs(rows)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE communication_log")
        if plain_copy:  # the stock-DRF baseline's table: the same rows with only a primary key
            cursor.execute("CREATE TABLE bench_log_plain AS SELECT * FROM communication_log")
            cursor.execute("ALTER TABLE bench_log_plain ADD PRIMARY KEY (id)")
            cursor.execute("VACUUM ANALYZE bench_log_plain")
    return tenants, users, admin


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    migrate()
    print(f"Seeding {args.rows:,} logs …", flush=True)
    tenants, users, admin = seed(args.rows)
    user = users[0]

    def client(who):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(who)}")
        return api

    as_user, as_admin = client(user), client(admin)
    deep_page = min(50, args.rows // (2 * USERS_PER_TENANT) // 20)
    cases = [
        ("user, page 1", as_user, "/api/v1/communication/logs", "/bench/baseline/logs", {"user_id": user.id}),
        (
            f"user, page {deep_page}",
            as_user,
            "/api/v1/communication/logs",
            "/bench/baseline/logs",
            {"user_id": user.id, "page": deep_page},
        ),
        ("admin, unfiltered", as_admin, "/api/v1/admin/communication/logs", "/bench/baseline/admin-logs", {}),
        (
            "admin, status=failed",
            as_admin,
            "/api/v1/admin/communication/logs",
            "/bench/baseline/admin-logs",
            {"status": "failed"},
        ),
    ]
    rows = []
    for name, api, ours_url, base_url, params in cases:
        ours_params = {k: v for k, v in params.items() if k != "user_id" or "admin" in name}
        response = api.get(ours_url, ours_params)
        assert response.status_code == 200 and response.json()["items"], response.content[:300]
        baseline_response = api.get(base_url, params)
        assert baseline_response.status_code == 200, baseline_response.content[:300]
        assert response.json()["total"] == baseline_response.json()["count"], (
            name,
            response.json()["total"],
            baseline_response.json()["count"],
        )
        ours = time_calls(partial(api.get, ours_url, ours_params), repeat=args.repeat)
        base = time_calls(partial(api.get, base_url, params), repeat=max(20, args.repeat // 5))
        rows.append(
            [
                name,
                f"{response.json()['total']:,}",
                f"{ours['p50']:.1f}",
                f"{ours['p95']:.1f}",
                f"{base['p50']:.1f}",
                f"{base['p95']:.1f}",
                f"{base['p95'] / ours['p95']:.1f}x",
            ]
        )
    print(f"\nLogs API, {args.rows:,} rows, PostgreSQL, times in ms (ours n={args.repeat})")
    print_table(
        ["query", "matching rows", "ours p50", "ours p95", "stock p50", "stock p95", "stock/ours p95"], rows
    )


if __name__ == "__main__":
    main()
