from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from authms.env import parse_duration_seconds


class PurgeCommand(BaseCommand):
    """A purge with `--older-than <duration>` in place of its retention setting."""

    older_than_help = "A duration such as 30d or 12h instead of the retention setting."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", help=self.older_than_help)

    def handle(self, *args, older_than=None, **options):
        try:
            age = timedelta(seconds=parse_duration_seconds(older_than)) if older_than else None
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.purge(age)

    def purge(self, older_than: timedelta | None) -> None:
        raise NotImplementedError
