"""The inbox at 1,000,000 notifications over 10,000 users.

    make bench BENCH=notifications
    make bench BENCH=notifications BENCH_ARGS="--rows=200000 --users=2000"

Times, for users picked at random, GET /notifications (unread_only off and on) and
GET /notifications/unread-count through the real URL stack with real JWTs, and the same
reads at the ORM level. Baseline, in the same run: a django-notifications-hq-style table
(recipient, unread, timestamp; indexes on (recipient, unread) and timestamp) read via the
ORM the way that library does (filter(recipient, unread).count(), order_by(-timestamp)).
"""

import argparse
import random
from functools import partial

from bench.common import migrate, print_table, setup_django, time_calls

setup_django(urlconf="bench.urls")

from django.db import connection
from rest_framework.test import APIClient

from authms.models import Tenant, User
from bench.urls import HqNotification
from notifications import selectors
from tests.conftest import access_token_for


def seed(rows: int, users: int):
    tenant = Tenant.objects.create(name="Inbox bench", slug="inbox-bench")
    User.objects.bulk_create(User(tenant=tenant, username=f"inbox-{i}", password="!") for i in range(users))
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_inbox_users AS "
            "SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM authms_user WHERE tenant_id = %s",
            [tenant.id],
        )
        # Every user gets rows/users notifications, one in seven unread.
        cursor.execute(
            """
            INSERT INTO notifications_notification (id, tenant_id, user_id, type, event_type, priority, title,
                content, metadata, is_read, read_at, created_at)
            SELECT 'ntf_' || lpad(g::text, 26, '0'), %s, u.id, 'system', 'status.incident.created', 'medium',
                   'Notice ' || g, 'Body', '{}'::jsonb, (g / %s) %% 7 <> 0, NULL,
                   now() - ((%s - g) || ' seconds')::interval
            FROM generate_series(1, %s) AS g JOIN bench_inbox_users u ON u.n = g %% %s
            """,
            [tenant.id, users, rows, rows, users],
        )
        cursor.execute(
            """
            CREATE TABLE bench_hq_notification AS
            SELECT row_number() OVER () AS id, user_id AS recipient_id, NOT is_read AS unread,
                   created_at AS timestamp, title AS verb, content AS description, 'info' AS level
            FROM notifications_notification
            """
        )
        cursor.execute("ALTER TABLE bench_hq_notification ADD PRIMARY KEY (id)")
        cursor.execute("CREATE INDEX ON bench_hq_notification (recipient_id, unread)")
        cursor.execute("CREATE INDEX ON bench_hq_notification (timestamp)")
        cursor.execute("VACUUM ANALYZE notifications_notification")
        cursor.execute("VACUUM ANALYZE bench_hq_notification")
    return list(User.objects.filter(tenant=tenant))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    migrate()
    print(f"Seeding {args.rows:,} notifications over {args.users:,} users …", flush=True)
    users = seed(args.rows, args.users)
    rng = random.Random(1)
    # Tokens minted before timing, and one client (a fresh test client rebuilds the
    # middleware chain on its first request): only the request itself is measured.
    tokens = [f"Bearer {access_token_for(user)}" for user in rng.sample(users, min(500, len(users)))]
    client = APIClient()

    def api(path, params=None):
        response = client.get(path, params or {}, HTTP_AUTHORIZATION=rng.choice(tokens))
        assert response.status_code == 200, response.content[:200]

    def ours_list(unread_only):
        user = rng.choice(users)
        queryset = selectors.notification_list(
            user=user, params={"unread_only": "true" if unread_only else "false"}
        )
        return queryset.count(), list(queryset[:20])

    def ours_count():
        return selectors.notification_counts(user=rng.choice(users))

    def hq_list(unread_only):
        queryset = HqNotification.objects.filter(recipient_id=rng.choice(users).id)
        if unread_only:
            queryset = queryset.filter(unread=True)
        queryset = queryset.order_by("-timestamp")
        return queryset.count(), list(queryset[:20])

    def hq_count():
        return HqNotification.objects.filter(recipient_id=rng.choice(users).id, unread=True).count()

    cases = [
        ("list, unread_only=false", partial(api, "/api/v1/notifications"), partial(ours_list, False), partial(hq_list, False)),
        ("list, unread_only=true", partial(api, "/api/v1/notifications", {"unread_only": "true"}), partial(ours_list, True), partial(hq_list, True)),
        ("unread count", partial(api, "/api/v1/notifications/unread-count"), ours_count, hq_count),
    ]  # fmt: skip
    rows = []
    for name, through_api, orm, baseline in cases:
        a, o, b = (time_calls(call, repeat=args.repeat) for call in (through_api, orm, baseline))
        rows.append(
            [
                name,
                f"{a['p50']:.2f}",
                f"{a['p95']:.2f}",
                f"{o['p95']:.2f}",
                f"{b['p95']:.2f}",
                f"{b['p95'] / o['p95']:.1f}x",
            ]
        )
    print(
        f"\nInbox, {args.rows:,} notifications, {args.users:,} users, PostgreSQL, ms (n={args.repeat}, random users)"
    )
    print_table(["read", "API p50", "API p95", "ORM p95 (ours)", "ORM p95 (hq-style)", "hq/ours"], rows)


if __name__ == "__main__":
    main()
