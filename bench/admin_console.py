"""The staff console at 10,000,000 logs: the logs changelist and the dashboard, beside stock
Django admin in the same run.

    make bench BENCH=admin_console                              # 10M logs, ~25 minutes
    make bench BENCH=admin_console BENCH_ARGS="--rows=1000000"

Seeds like bench.logs_api (2 tenants × 500 users, one log a second going back; SQL with the
indexes built after the rows, then counted by `recount_logs` as the triggers would), signs a tenant admin into the admin with
the test client and times whole page renders, cold: the app's caches are cleared before every
request. Each changelist case runs against this service's admin and against a stock
`ModelAdmin` of the same model, fields, filters and date hierarchy on a second admin site
(`bench/urls.py`), tenant-scoped the same way. The dashboard's figures are timed against the
first version's aggregate over the log table.
"""

import argparse
from datetime import timedelta
from functools import partial

from bench.common import migrate, print_table, setup_django, time_calls

setup_django("bench.urls")

from django.core.cache import cache
from django.db.models import Count, Q
from django.test import Client
from django.utils import timezone

from bench.logs_api import seed
from communication.models import CommunicationLog, Status
from communication.selectors import delivery_dashboard

OURS = "/admin/communication/communicationlog/"
STOCK = "/bench/stock-admin/communication/communicationlog/"


def dashboard_over_the_log_table(tenant_id):
    """The first dashboard's queries: one aggregate scan of the last 7 days for both windows,
    then the top failure reasons per window, all over the log table."""
    now = timezone.now()
    starts = {"24h": now - timedelta(hours=24), "7d": now - timedelta(days=7)}
    logs = CommunicationLog.objects.filter(tenant_id=tenant_id)
    list(
        logs.filter(created_at__gte=starts["7d"])
        .values("channel", "provider", "status")
        .annotate(**{label: Count("id", filter=Q(created_at__gte=start)) for label, start in starts.items()})
        .order_by()
    )
    for start in starts.values():
        list(
            logs.filter(created_at__gte=start, status=Status.FAILED)
            .values("error")
            .annotate(n=Count("id"))
            .order_by("-n", "error")[:5]
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--stock-repeat", type=int, default=5, help="Stock admin pages take seconds each.")
    args = parser.parse_args()
    migrate()
    print(f"Seeding {args.rows:,} logs …", flush=True)
    tenants, _users, admin_user = seed(args.rows)
    client = Client()
    client.force_login(admin_user)
    recipient = CommunicationLog.objects.filter(tenant=tenants[0], channel="sms").values_list(
        "recipient", flat=True
    )[0]
    today = timezone.now()

    def page(path, params=None):
        cache.clear()
        response = client.get(path, params or {})
        assert response.status_code == 200, response.status_code
        return response

    def cold(call):
        cache.clear()
        return call()

    day = {"created_at__year": today.year, "created_at__month": today.month, "created_at__day": today.day}
    changelist_cases = [
        ("unfiltered", {}),
        ("status=failed", {"status__exact": "failed"}),
        ("provider=submail", {"provider": "submail"}),
        ("channel=email, status=delivered", {"channel__exact": "email", "status__exact": "delivered"}),
        ("search exact recipient", {"q": recipient}),
        ("day drill-down", day),
        ("page 200", {"p": 200}),
    ]
    rows = []
    for name, params in changelist_cases:
        ours = time_calls(partial(page, OURS, params), repeat=args.repeat, warmup=2)
        stock = time_calls(partial(page, STOCK, params), repeat=args.stock_repeat, warmup=1)
        rows.append(
            [f"changelist, {name}", f"{ours['p50']:.0f}", f"{ours['p95']:.0f}", f"{stock['p50']:.0f}",
             f"{stock['p95']:.0f}", f"{stock['p50'] / ours['p50']:.1f}×"]
        )  # fmt: skip
    figures = time_calls(
        partial(cold, partial(delivery_dashboard, actor=admin_user)), repeat=args.repeat, warmup=2
    )
    scan = time_calls(
        partial(dashboard_over_the_log_table, tenants[0].id), repeat=args.stock_repeat, warmup=1
    )
    rows.append(
        ["dashboard figures (counts / COUNT over logs)", f"{figures['p50']:.0f}", f"{figures['p95']:.0f}",
         f"{scan['p50']:.0f}", f"{scan['p95']:.0f}", f"{scan['p50'] / figures['p50']:.1f}×"]
    )  # fmt: skip
    index = time_calls(partial(page, "/admin/"), repeat=args.repeat, warmup=2)
    rows.append(
        ["admin index with the dashboard, cold", f"{index['p50']:.0f}", f"{index['p95']:.0f}", "", "", ""]
    )
    print(
        f"\nStaff console, {args.rows:,} logs (the tenant admin sees {args.rows // 2:,}), PostgreSQL, ms, "
        f"cold (app caches cleared), n={args.repeat} ours / {args.stock_repeat} stock"
    )
    print_table(["page", "p50", "p95", "stock p50", "stock p95", "stock / ours"], rows)


if __name__ == "__main__":
    main()
