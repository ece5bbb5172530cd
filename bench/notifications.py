"""The inbox at 1,000,000 notifications over 10,000 users, over HTTP, beside django-notifications-hq.

    make bench BENCH=notifications
    make bench BENCH=notifications BENCH_ARGS="--rows=200000 --users=2000"

The peer is django-notifications-hq 1.8.3 with its own JSON views (api/unread_count/,
api/all_list/, api/unread_list/), installed in a virtualenv of its own (.venv-bench-hq, made on
the first run from bench/hq_peer/requirements.txt: its package is also named `notifications`, so
it cannot share a process with the service). Same PostgreSQL server (its own database), the same
rows (USERS users, ROWS notifications, one in seven unread), each app under gunicorn with one
sync worker (as each serves its API in production), sessions for the peer and JWTs for ours made before timing. Rounds interleave the two
(order swapped each round); random users; keep-alive connections.
"""

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import free_port, migrate, print_table, serve, setup_django

setup_django()

from django.conf import settings
from django.db import connection

from authms.models import Tenant, User
from tests.conftest import access_token_for

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "bench" / "hq_peer"
PEER_VENV = ROOT / ".venv-bench-hq"
PEER_DATABASE = "bench_hq_peer"


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
                content, metadata, template, params, is_read, read_at, created_at)
            SELECT 'ntf_' || lpad(g::text, 26, '0'), %s, u.id, 'system', 'status.incident.created', 'medium',
                   'Notice ' || g, 'Body', '{}'::jsonb, '', '{}'::jsonb, (g / %s) %% 7 <> 0, NULL,
                   now() - ((%s - g) || ' seconds')::interval
            FROM generate_series(1, %s) AS g JOIN bench_inbox_users u ON u.n = g %% %s
            """,
            [tenant.id, users, rows, rows, users],
        )
        cursor.execute("VACUUM ANALYZE notifications_notification")
    return list(User.objects.filter(tenant=tenant))


def peer_environment() -> dict:
    """The peer's virtualenv (made once per requirements file) and its database's address."""
    requirements = PEER / "requirements.txt"
    stamp = PEER_VENV / f".installed-{hashlib.sha1(requirements.read_bytes()).hexdigest()[:12]}"
    if not stamp.exists():
        print("Installing django-notifications-hq into .venv-bench-hq …", flush=True)
        subprocess.run([sys._base_executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
        subprocess.run([str(PEER_VENV / "bin/pip"), "install", "-q", "-r", str(requirements)], check=True)
        stamp.touch()
    database = settings.DATABASES["default"]
    credentials = (
        f"{database['USER']}:{database['PASSWORD']}@" if database["PASSWORD"] else f"{database['USER']}@"
    )
    return {
        **os.environ,
        "PEER_DATABASE_URL": f"postgres://{credentials}{database['HOST']}:{database['PORT']}/{PEER_DATABASE}",
        "PYTHONPATH": str(PEER),
        "DJANGO_SETTINGS_MODULE": "peer_settings",
    }


def peer_tool(env: dict, *args: str) -> str:
    return subprocess.run(
        [str(PEER_VENV / "bin/python"), "peer_tool.py", *args], cwd=PEER, env=env, check=True,
        stdout=subprocess.PIPE, text=True,
    ).stdout  # fmt: skip


def start_gunicorn(gunicorn: Path, app: str, port: int, cwd: Path, env: dict) -> subprocess.Popen:
    """One sync worker: each app as its API is served in production (persistent connections)."""
    return serve(
        [str(gunicorn), app, "-b", f"127.0.0.1:{port}", "-w", "1", "--log-level", "warning"],
        port,
        cwd=cwd,
        env=env,
    )


def timed(client: httpx.Client, path: str, pick_auth, rng: random.Random, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        headers, cookies = pick_auth(rng)
        started = time.perf_counter()
        response = client.get(path, headers=headers, cookies=cookies)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            sys.exit(f"{path}: {response.status_code} {response.text[:200]}")
    return samples


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=200)
    args = parser.parse_args()
    env = peer_environment()
    migrate()
    print(f"Seeding {args.rows:,} notifications over {args.users:,} users, twice …", flush=True)
    users = seed(args.rows, args.users)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {PEER_DATABASE}")
        cursor.execute(f"CREATE DATABASE {PEER_DATABASE}")
    peer_tool(env, "seed", str(args.rows), str(args.users))
    sessions = json.loads(peer_tool(env, "sessions", "500"))
    rng = random.Random(1)
    tokens = [f"Bearer {access_token_for(user)}" for user in rng.sample(users, min(500, len(users)))]

    ours_port, peer_port = free_port(), free_port()
    ours_env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1"}
    ours = start_gunicorn(ROOT / ".venv/bin/gunicorn", "authms.wsgi", ours_port, ROOT, ours_env)
    peer = start_gunicorn(PEER_VENV / "bin/gunicorn", "peer_wsgi", peer_port, PEER, env)
    cases = [
        ("unread count", "/api/v1/notifications/unread-count", "/inbox/notifications/api/unread_count/"),
        ("list, 20 newest", "/api/v1/notifications?page_size=20", "/inbox/notifications/api/all_list/?max=20"),
        ("list, 20 newest unread", "/api/v1/notifications?unread_only=true&page_size=20",
         "/inbox/notifications/api/unread_list/?max=20"),
    ]  # fmt: skip
    samples = {(name, side): [] for name, *_ in cases for side in ("ours", "peer")}
    try:
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{ours_port}") as ours_client,
            httpx.Client(base_url=f"http://127.0.0.1:{peer_port}") as peer_client,
        ):
            sides = {
                "ours": (ours_client, lambda rng: ({"Authorization": rng.choice(tokens)}, None)),
                "peer": (peer_client, lambda rng: ({}, {"sessionid": rng.choice(sessions)})),
            }
            for _name, ours_path, peer_path in cases:  # warm-up: connections, caches
                timed(ours_client, ours_path, sides["ours"][1], rng, 20)
                timed(peer_client, peer_path, sides["peer"][1], rng, 20)
            for round_ in range(args.rounds):
                order = ("ours", "peer") if round_ % 2 == 0 else ("peer", "ours")
                for name, ours_path, peer_path in cases:
                    for side in order:
                        client, auth = sides[side]
                        path = ours_path if side == "ours" else peer_path
                        samples[(name, side)] += timed(client, path, auth, rng, args.per_round)
    finally:
        for server in (ours, peer):
            server.terminate()
            server.wait(10)

    rows = []
    for name, *_ in cases:
        mine, theirs = samples[(name, "ours")], samples[(name, "peer")]
        rows.append(
            [name]
            + [f"{percentile(values, share):.2f}" for values in (mine, theirs) for share in (0.5, 0.95)]
            + [f"{percentile(theirs, 0.5) / percentile(mine, 0.5):.1f}x", f"{percentile(theirs, 0.95) / percentile(mine, 0.95):.1f}x"]
        )  # fmt: skip
    print(
        f"\nInbox over HTTP, {args.rows:,} notifications, {args.users:,} users, PostgreSQL, gunicorn 1 sync worker each; "
        f"ms, n={args.rounds * args.per_round} per cell, {args.rounds} interleaved rounds"
    )
    print_table(["read", "ours p50", "ours p95", "hq p50", "hq p95", "hq/ours p50", "hq/ours p95"], rows)


if __name__ == "__main__":
    main()
