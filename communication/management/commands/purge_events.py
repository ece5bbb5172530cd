from communication.management.purging import PurgeCommand
from communication.services.events import events_purge


class Command(PurgeCommand):
    help = (
        "Deletes events (and their webhook deliveries and attempts) older than EVENTS_RETENTION "
        "(30 days), as beat does hourly; feed cursors from before them then get 410."
    )
    older_than_help = "A duration such as 30d or 12h instead of EVENTS_RETENTION."

    def purge(self, older_than):
        self.stdout.write(f"Purged {events_purge(older_than=older_than)} events.")
