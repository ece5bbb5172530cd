"""Aliyun paths: sending through the fake Aliyun server in batches against one call each.

    make bench BENCH=aliyun
    make bench BENCH=aliyun BENCH_ARGS="--messages=2000"

10,000 template SMS drained by one `celery worker` process with default settings through the
fake Aliyun server in this process (signature V3, verified by the fake), with SendBatchSms
chunks of 100 (the median of three fresh batches), against the same with one SendSms call
per message; duplicates counted at the fake.
"""

import argparse
from collections import Counter

from bench.common import (
    MEDIAN_DRAIN_PREFIXES,
    bench_sender,
    drain_in_workers,
    median_drain,
    print_table,
    send_rows,
    setup_django,
)

setup_django()

from tests.conftest import ALIYUN_KEY_ID, ALIYUN_KEY_SECRET, ALIYUN_TEMPLATES  # noqa: E402
from tests.fakes.aliyun_server import FakeAliyun  # noqa: E402

PAYLOAD = {"provider_codes": {"aliyun": "SMS_100"}, "variables": {"code": "2468"}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    user = bench_sender()

    fake = FakeAliyun({ALIYUN_KEY_ID: ALIYUN_KEY_SECRET}, templates=ALIYUN_TEMPLATES).start()
    env = {
        "SMS_PROVIDER": "aliyun", "ALIYUN_ACCESS_KEY_ID": ALIYUN_KEY_ID, "ALIYUN_ACCESS_KEY_SECRET": ALIYUN_KEY_SECRET,
        "ALIYUN_SMS_SIGN_NAME": "Bench", "ALIYUN_SMS_BASE_URL": fake.url,
    }  # fmt: skip
    n = args.messages
    batched, batched_runs = median_drain(user, n, "bat_batched", provider="aliyun", env=env, payload=PAYLOAD)
    calls_batched = fake.calls("SendBatchSms") // len(MEDIAN_DRAIN_PREFIXES)
    single = drain_in_workers(
        user, n, "bat_single", provider="aliyun", env={**env, "ALIYUN_CHUNK_SIZE": 1}, payload=PAYLOAD,
        prefix="+86138",
    )  # fmt: skip
    fake.stop()
    accepted = Counter(fake.deliveries())
    duplicates = sum(count - 1 for count in accepted.values())
    runs = len(MEDIAN_DRAIN_PREFIXES) + 1
    assert len(fake.messages) == runs * args.messages and fake.calls("SendSms") == args.messages
    rows = send_rows(
        args.messages,
        batched,
        single,
        f"SendBatchSms ×100 ({calls_batched} calls), 1 worker, median of {batched_runs}",
        "one SendSms each, 1 worker",
    )
    rows[-1][-1] = f"target ≥ 20x and ≥ 2,000 msg/s; {duplicates} duplicates"
    print("\nAliyun paths, PostgreSQL + Redis + fake Aliyun (signature V3) on 127.0.0.1")
    print_table(["measure", "time", "rate"], rows)


if __name__ == "__main__":
    main()
