"""Millions of realistic logs in seconds (one INSERT … SELECT generate_series, PostgreSQL): for
the log benchmarks and the index plan test, which need the planner to see real proportions.

2 tenants × 500 users; one log a second going back from now; a third email (smtp), the rest SMS
(one in five through aliyun, else submail); 4/7 delivered, 1/7 each sent, failed (rejected or
undelivered) and pending (queued); every other thousand logs one bulk batch."""

from django.db import connection

from authms.models import Tenant, User
from communication.models import CommunicationLog
from communication.services.log_counts import recount_logs

USERS_PER_TENANT = 500

_INSERT = """
    INSERT INTO communication_log (id, tenant_id, user_id, channel, provider, recipient, subject,
        content, status, status_detail, batch_id, attempts, created_at, updated_at)
    SELECT 'log_' || lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || lpad(g::text, 14, '0'),
           u.tenant_id, u.id,
           CASE WHEN mod(g, 3) = 0 THEN 'email' ELSE 'sms' END,
           CASE WHEN mod(g, 3) = 0 THEN 'smtp' WHEN mod(g, 5) = 1 THEN 'aliyun' ELSE 'submail' END,
           CASE WHEN mod(g, 3) = 0 THEN 'user' || g || '@example.com'
                ELSE '+86138' || lpad(mod(g, 100000000)::text, 8, '0') END,
           '', 'Your verification code is ******', s.status,
           CASE s.status WHEN 'pending' THEN 'queued'
                         WHEN 'failed' THEN (ARRAY['rejected', 'undelivered'])[1 + mod(g / 7, 2)]
                         ELSE '' END,
           CASE WHEN mod(g / 1000, 2) = 0 THEN 'bat_' || lpad((g / 1000)::text, 12, '0') END,
           1, ts, ts
    FROM generate_series(1, %s) AS g
    JOIN bench_users u ON u.n = mod(g, %s)
    CROSS JOIN LATERAL (SELECT now() - (g || ' seconds')::interval AS ts) t
    CROSS JOIN LATERAL (SELECT (ARRAY['delivered','delivered','delivered','delivered','sent','failed','pending'])
                               [1 + mod(g, 7)] AS status) s
"""


def seed_logs(rows: int, *, bulk: bool = False) -> tuple[list[Tenant], list[User], User]:
    """Two tenants, their users, a staff user of the first (not yet an admin), and `rows` logs.

    `bulk`: with the log table's triggers off (foreign key checks too: superuser only) and its
    indexes built after the rows instead of row by row, then counted by `recount_logs()`: about
    3× faster. No events are recorded for these logs."""
    tenants = [Tenant.objects.create(name=f"Bench {n}", slug=f"bench-{n}") for n in range(2)]
    users = []
    for tenant in tenants:
        users += User.objects.bulk_create(
            User(tenant=tenant, username=f"{tenant.slug}-u{i}", password="!") for i in range(USERS_PER_TENANT)
        )
    admin = User.objects.create(tenant=tenants[0], username="bench-admin", is_staff=True, password="!")
    indexes = CommunicationLog._meta.indexes if bulk else []
    with connection.schema_editor() as editor, connection.cursor() as cursor:
        for index in indexes:
            editor.remove_index(CommunicationLog, index)
        cursor.execute(
            "CREATE TEMP TABLE bench_users AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, tenant_id"
            " FROM authms_user WHERE username <> 'bench-admin'"
        )
        if bulk:
            cursor.execute("ALTER TABLE communication_log DISABLE TRIGGER ALL")
        cursor.execute(_INSERT, [rows, len(users)])
        if bulk:
            cursor.execute("ALTER TABLE communication_log ENABLE TRIGGER ALL")
        cursor.execute("DROP TABLE bench_users")
        for index in indexes:
            editor.add_index(CommunicationLog, index)
    if bulk:
        recount_logs()
    return tenants, users, admin
