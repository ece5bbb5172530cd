"""The staff console at 1,000,000 logs: the logs changelist and the dashboard.

    make bench BENCH=admin_console
    make bench BENCH=admin_console BENCH_ARGS="--rows=200000"

Seeds like bench.logs_api (2 tenants × 500 users), signs a tenant admin into the admin
with the test client, and times full page renders: the changelist unfiltered, filtered by
status, searched by exact recipient, and drilled into by day; and the admin index with the
delivery dashboard computed cold (cache cleared before every request).
"""

import argparse
from functools import partial

from bench.common import migrate, print_table, setup_django, time_calls

setup_django()

from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from authms.roles import make_tenant_admin
from bench.logs_api import seed
from communication.models import CommunicationLog

CHANGELIST = "/admin/communication/communicationlog/"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    migrate()
    print(f"Seeding {args.rows:,} logs …", flush=True)
    tenants, users, admin_user = seed(args.rows)
    make_tenant_admin(admin_user)
    client = Client()
    client.force_login(admin_user)
    recipient = CommunicationLog.objects.filter(tenant=tenants[0], channel="sms").values_list(
        "recipient", flat=True
    )[0]
    today = timezone.now()

    def page(path, params=None, *, cold=False):
        if cold:
            cache.clear()
        response = client.get(path, params or {})
        assert response.status_code == 200, response.status_code
        return response

    cases = [
        ("changelist, unfiltered", partial(page, CHANGELIST)),
        ("changelist, status=failed", partial(page, CHANGELIST, {"status__exact": "failed"})),
        ("changelist, search exact recipient", partial(page, CHANGELIST, {"q": recipient})),
        ("changelist, day drill-down", partial(page, CHANGELIST, {"created_at__year": today.year, "created_at__month": today.month, "created_at__day": today.day})),
        ("changelist, page 200", partial(page, CHANGELIST, {"p": 200})),
        ("admin index with dashboard (cold)", partial(page, "/admin/", cold=True)),
        ("admin index with dashboard (cached)", partial(page, "/admin/")),
    ]  # fmt: skip
    rows = []
    for name, call in cases:
        timing = time_calls(call, repeat=args.repeat, warmup=2)
        rows.append([name, f"{timing['p50']:.0f}", f"{timing['p95']:.0f}"])
    print(
        f"\nStaff console, {args.rows:,} logs (tenant admin sees {args.rows // 2:,}), PostgreSQL, ms, n={args.repeat}"
    )
    print_table(["page", "p50", "p95"], rows)


if __name__ == "__main__":
    main()
