"""Push through FCM HTTP v1 against the fake FCM (and its Google token endpoint).

    make bench BENCH=push
    make bench BENCH=push BENCH_ARGS="--messages=2000"

10,000 push logs (one per device) drained by one `celery worker` process with default
settings: one request per device token, FCM_CONCURRENCY (32) in flight, against the same sent
one request at a time (FCM_CONCURRENCY=1). 1 % of the tokens answer UNREGISTERED: those logs
fail, their devices are deactivated, and nothing is sent twice (counted at the fake). Measured
with the fake answering at once, and with 50 ms per request, nearer a real push service's.
"""

import argparse
import json
from collections import Counter

from bench.common import bench_sender, drain_in_workers, print_table, setup_django

setup_django()

from communication.models import CommunicationLog, Device  # noqa: E402
from tests.conftest import _service_account_key  # noqa: E402
from tests.fakes.fcm_server import FakeFcm  # noqa: E402

EMAIL = "bench@authms-bench.iam.gserviceaccount.com"


def devices(user, count: int, tag: str) -> list[Device]:
    return Device.objects.bulk_create(
        Device(
            tenant_id=user.tenant_id,
            user=user,
            platform="android",
            provider="fcm",
            token=f"{tag}-{n:06d}-" + "t" * 24,
        )
        for n in range(count)
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--sequential", type=int, default=1_000, help="Messages for the one-at-a-time runs.")
    args = parser.parse_args()
    user = bench_sender()
    private, public = _service_account_key()
    fake = FakeFcm(project_id="authms-bench", client_email=EMAIL, public_key_pem=public).start()
    env = {
        "PUSH_FCM_PROVIDER": "fcm", "FCM_BASE_URL": fake.url,
        "FCM_SERVICE_ACCOUNT_JSON": json.dumps({
            "type": "service_account", "project_id": "authms-bench", "private_key_id": "bench",
            "private_key": private.decode(), "client_email": EMAIL, "token_uri": f"{fake.url}/token",
        }),
    }  # fmt: skip
    rows = []
    for latency in (0.0, 0.05):
        fake.delay = latency
        timings = {}
        for label, count, concurrency in (
            ("concurrent", args.messages, 32),
            ("sequential", args.sequential, 1),
        ):
            tag = f"bat_{label}_{int(latency * 1000)}"
            targets = devices(user, count, tag)
            gone = {device.token for device in targets[::100]}  # 1 %
            fake.errors.update(dict.fromkeys(gone, "UNREGISTERED"))
            seconds = drain_in_workers(
                user, count, tag, provider="fcm", env={**env, "FCM_CONCURRENCY": concurrency}, channel="push",
                recipients=[device.id for device in targets], check_sent=False,
            )  # fmt: skip
            retired = Device.objects.filter(token__in=gone, active=False).count()
            outcomes = Counter(
                "unknown" if detail == "unknown" else status
                for status, detail in CommunicationLog.objects.filter(batch_id=tag).values_list(
                    "status", "status_detail"
                )
            )
            assert retired == len(gone) and outcomes["failed"] == len(gone) and not outcomes["pending"], (
                outcomes
            )
            timings[label] = (count, seconds)
            rows.append(
                [f"{count:,} pushes, {label} ({concurrency} in flight), fake answering in {latency * 1000:.0f} ms",
                 f"{seconds:.2f} s", f"{count / seconds:,.0f} messages/s",
                 f"{outcomes['sent']:,} sent, {outcomes['failed']} failed and retired, {outcomes['unknown']} unknown"]
            )  # fmt: skip
        (n_fast, fast), (n_slow, slow) = timings["concurrent"], timings["sequential"]
        rows.append(
            ["speed-up (messages/s)", f"{(n_fast / fast) / (n_slow / slow):.1f}x", "target ≥ 10x", ""]
        )
    fake.stop()
    duplicates = sum(count - 1 for count in Counter(fake.delivered_tokens()).values())
    print("\nPush through FCM HTTP v1 (fake FCM on 127.0.0.1), 1 worker process")
    print_table(["measure", "time", "rate", "outcomes"], rows)
    print(f"\nSent twice: {duplicates}; tokens issued: {len(fake.tokens_issued)}")


if __name__ == "__main__":
    main()
