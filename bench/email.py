"""Email through an ESP API (django-anymail's Postmark backend) against the fake Postmark.

    make bench BENCH=email
    make bench BENCH=email BENCH_ARGS="--messages=1000"

5,000 emails of one bulk drained by one `celery worker` process with default settings:
anymail batch sends of EMAIL_ESP_CHUNK_SIZE (100) recipients per `email/batch` call, against
the same with one `email` call per message (EMAIL_ESP_CHUNK_SIZE=1); the fake runs in this
process (HTTP on 127.0.0.1, server token checked); duplicates counted at the fake.
"""

import argparse
from collections import Counter

from bench.common import bench_sender, drain_in_workers, print_table, send_rows, setup_django

setup_django()

from tests.fakes.postmark_server import FakePostmark  # noqa: E402

TOKEN = "bench-server-token"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5_000)
    args = parser.parse_args()
    user = bench_sender()

    fake = FakePostmark(TOKEN).start()
    env = {
        "EMAIL_PROVIDER": "anymail", "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "ANYMAIL_POSTMARK_SERVER_TOKEN": TOKEN, "ANYMAIL_POSTMARK_API_URL": f"{fake.url}/",
    }  # fmt: skip
    n = args.messages
    batched = drain_in_workers(
        user, n, "bat_batched", provider="anymail", env=env, channel="email", prefix="a"
    )
    calls_batched = fake.calls("email/batch")
    single = drain_in_workers(
        user,
        n,
        "bat_single",
        provider="anymail",
        env={**env, "EMAIL_ESP_CHUNK_SIZE": 1},
        channel="email",
        prefix="b",
    )
    fake.stop()
    duplicates = sum(count - 1 for count in Counter(fake.deliveries()).values())
    assert len(fake.emails) == 2 * n
    rows = send_rows(
        n,
        batched,
        single,
        f"batch ×100 ({calls_batched} calls), 1 worker",
        "one call each, 1 worker",
        what="emails",
    )
    rows[-1][-1] = f"target ≥ 10x; {duplicates} duplicates"
    print("\nEmail through anymail's Postmark backend, PostgreSQL + Redis + fake Postmark on 127.0.0.1")
    print_table(["measure", "time", "rate"], rows)


if __name__ == "__main__":
    main()
