from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from authms.env import parse_duration_seconds
from notifications.services import notifications_purge


class Command(BaseCommand):
    help = "Delete notifications older than a given age (read ones only, unless --include-unread)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", default="90d", help="Age such as 90d, 12h, 30m (default 90d).")
        parser.add_argument("--include-unread", action="store_true", help="Delete unread ones too.")
        parser.add_argument("--batch-size", type=int, default=5000, help="Rows per DELETE statement.")

    def handle(self, *args, older_than, include_unread, batch_size, **options):
        try:
            seconds = parse_duration_seconds(older_than)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        cutoff = timezone.now() - timedelta(seconds=seconds)
        deleted = notifications_purge(older_than=cutoff, include_unread=include_unread, batch_size=batch_size)
        self.stdout.write(
            self.style.SUCCESS(f"Deleted {deleted} notifications created before {cutoff:%Y-%m-%d %H:%M} UTC.")
        )
