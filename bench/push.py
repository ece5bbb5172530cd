"""Push through FCM HTTP v1 and through Web Push, against the fake FCM and the fake Web Push service.

    make bench BENCH=push
    make bench BENCH=push BENCH_ARGS="--messages=2000 --sequential=200"

For each push service, 10,000 push logs (one per device) drained by one `celery worker` process
with default settings: one request per device (neither service has a batch send), the
provider's default number in flight (FCM 32, Web Push 16), against 1,000 sent one request at a
time. 1 % of the devices are gone (FCM UNREGISTERED, Web Push 410): those logs fail, their
devices are deactivated, and nothing is sent twice (counted at the fakes). Measured with the
fakes answering at once, and with 50 ms per request, nearer a real push service's. The Web
Push fake decrypts every payload with the browser's keys and checks the VAPID JWT.
"""

import argparse
import io
import json
from collections import Counter

from bench.common import bench_sender, drain_in_workers, print_table, setup_django

setup_django()

from django.core.management import call_command  # noqa: E402

from communication.models import CommunicationLog, Device  # noqa: E402
from tests.conftest import _service_account_key  # noqa: E402
from tests.fakes.fcm_server import FakeFcm  # noqa: E402
from tests.fakes.webpush_server import FakeWebPush  # noqa: E402

EMAIL = "bench@authms-bench.iam.gserviceaccount.com"


class Fcm:
    """The FCM side: devices with registration tokens; the fake answers UNREGISTERED for some."""

    name, concurrency_setting, default_concurrency = "fcm", "FCM_CONCURRENCY", 32

    def __init__(self):
        private, public = _service_account_key()
        self.fake = FakeFcm(project_id="authms-bench", client_email=EMAIL, public_key_pem=public).start()
        self.env = {
            "PUSH_FCM_PROVIDER": "fcm", "FCM_BASE_URL": self.fake.url,
            "FCM_SERVICE_ACCOUNT_JSON": json.dumps({
                "type": "service_account", "project_id": "authms-bench", "private_key_id": "bench",
                "private_key": private.decode(), "client_email": EMAIL, "token_uri": f"{self.fake.url}/token",
            }),
        }  # fmt: skip

    def devices(self, user, count: int, tag: str) -> list[Device]:
        devices = Device.objects.bulk_create(
            Device(tenant_id=user.tenant_id, user=user, platform="android", provider="fcm",
                   token=f"{tag}-{n:06d}-" + "t" * 24)
            for n in range(count)
        )  # fmt: skip
        self.fake.errors.update({device.token: "UNREGISTERED" for device in devices[::100]})
        return devices

    def latency(self, seconds: float):
        self.fake.delay = seconds

    def duplicates(self) -> int:
        return sum(n - 1 for n in Counter(self.fake.delivered_tokens()).values())


class WebPush:
    """The Web Push side: browser subscriptions made by the fake; some answer 410 Gone."""

    name, concurrency_setting, default_concurrency = "webpush", "WEBPUSH_CONCURRENCY", 16

    def __init__(self):
        out = io.StringIO()
        call_command("vapid_keys", stdout=out, stderr=io.StringIO())
        keys = dict(line.split("=", 1) for line in out.getvalue().split())
        self.public_key = keys["VAPID_PUBLIC_KEY"]
        self.fake = FakeWebPush().start()
        self.env = {
            **keys, "PUSH_WEBPUSH_PROVIDER": "webpush", "WEBPUSH_ALLOW_HTTP": "true",
            "WEBPUSH_ALLOW_PRIVATE_ENDPOINTS": "true", "WEBPUSH_ENDPOINT_HOSTS": "127.0.0.1",
        }  # fmt: skip

    def devices(self, user, count: int, tag: str) -> list[Device]:
        subscriptions = [self.fake.subscribe(self.public_key) for _ in range(count)]
        for subscription in subscriptions[::100]:
            self.fake.errors[subscription["endpoint"].rsplit("/", 1)[1]] = 410
        return Device.objects.bulk_create(
            Device(tenant_id=user.tenant_id, user=user, platform="web", provider="webpush",
                   token=s["endpoint"], p256dh=s["keys"]["p256dh"], auth=s["keys"]["auth"])
            for s in subscriptions
        )  # fmt: skip

    def latency(self, seconds: float):
        self.fake.faults.slow, self.fake.faults.slow_seconds = (1.0, seconds) if seconds else (0.0, 0.0)
        self.fake.faults.after_processing = False

    def duplicates(self) -> int:
        return sum(n - 1 for n in Counter(r.payload["log_id"] for r in self.fake.received).values())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--sequential", type=int, default=1_000, help="Messages for the one-at-a-time runs.")
    args = parser.parse_args()
    user = bench_sender()
    rows, notes = [], []
    for service in (Fcm(), WebPush()):
        for latency in (0.0, 0.05):
            service.latency(latency)
            rates = []
            for label, count, in_flight in (
                ("concurrent", args.messages, service.default_concurrency), ("sequential", args.sequential, 1),
            ):  # fmt: skip
                tag = f"bat_{service.name}_{label}_{int(latency * 1000)}"
                targets = service.devices(user, count, tag)
                seconds = drain_in_workers(
                    user, count, tag, provider=service.name, channel="push", check_sent=False,
                    env={**service.env, service.concurrency_setting: in_flight},
                    recipients=[device.id for device in targets],
                )  # fmt: skip
                outcomes = Counter(
                    "unknown" if detail == "unknown" else status
                    for status, detail in CommunicationLog.objects.filter(batch_id=tag).values_list("status", "status_detail")
                )  # fmt: skip
                retired = Device.objects.filter(id__in=[d.id for d in targets], active=False).count()
                assert retired == outcomes["failed"] == len(targets[::100]) and not outcomes["pending"], (
                    outcomes
                )
                rates.append(count / seconds)
                rows.append(
                    [f"{service.name}: {count:,} pushes, {in_flight} in flight, fake answering in {latency * 1000:.0f} ms",
                     f"{seconds:.2f} s", f"{count / seconds:,.0f} messages/s",
                     f"{outcomes['sent']:,} sent, {retired} gone and retired, {outcomes['unknown']} unknown"]
                )  # fmt: skip
            rows.append([f"{service.name}: speed-up", f"{rates[0] / rates[1]:.1f}x", "target ≥ 10x", ""])
        service.fake.stop()
        notes.append(f"{service.name}: sent twice {service.duplicates()}")
    print("\nPush, one worker process; fakes on 127.0.0.1")
    print_table(["measure", "time", "rate", "outcomes"], rows)
    print("\n" + "; ".join(notes))


if __name__ == "__main__":
    main()
