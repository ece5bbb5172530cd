from communication.management.purging import PurgeCommand
from communication.services.log_partitions import ensure_log_partitions, purge_logs


class Command(PurgeCommand):
    help = (
        "Makes the coming months' log partitions (PostgreSQL) and deletes logs older than "
        "LOG_RETENTION_DAYS with their delivery attempts and email events, as beat does hourly."
    )
    older_than_help = "A duration such as 365d instead of LOG_RETENTION_DAYS."

    def purge(self, older_than):
        if made := ensure_log_partitions():
            self.stdout.write(f"Made partitions {', '.join(made)}.")
        self.stdout.write(f"Purged {purge_logs(older_than=older_than)} logs.")
