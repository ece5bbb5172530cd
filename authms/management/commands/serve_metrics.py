import os
import time

from django.core.management.base import BaseCommand, CommandError
from prometheus_client import CollectorRegistry, multiprocess, start_http_server


class Command(BaseCommand):
    help = (
        "Serve this host's worker metrics (provider calls) for Prometheus, on a host that runs "
        "Celery workers and no web process. Needs PROMETHEUS_MULTIPROC_DIR, shared with the workers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9108)
        parser.add_argument("--address", default="127.0.0.1")

    def handle(self, *args, port, address, **options):
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            raise CommandError(
                "Set PROMETHEUS_MULTIPROC_DIR to the directory the workers write their metrics to."
            )
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(port, addr=address, registry=registry)
        self.stdout.write(f"Worker metrics on http://{address}:{port}/metrics")
        while True:
            time.sleep(3600)
