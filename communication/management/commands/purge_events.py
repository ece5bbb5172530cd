from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from authms.env import parse_duration_seconds
from communication.services.events import events_purge


class Command(BaseCommand):
    help = (
        "Deletes events (and their webhook deliveries and attempts) older than EVENTS_RETENTION "
        "(30 days), as beat does hourly; feed cursors from before them then get 410."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", help="A duration such as 30d or 12h instead of EVENTS_RETENTION.")

    def handle(self, *args, older_than=None, **options):
        try:
            age = timedelta(seconds=parse_duration_seconds(older_than)) if older_than else None
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Purged {events_purge(older_than=age)} events.")
