from django.core.management.base import BaseCommand

from communication.services.log_counts import fold_log_counts, recount_logs


class Command(BaseCommand):
    help = (
        "Rebuilds the dashboard's maintained log counts from the log table (after restoring a "
        "backup or editing logs with triggers disabled). Writes to the log table wait meanwhile."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--fold-only",
            action="store_true",
            help="Only fold pending count deltas (what beat does every 30 s).",
        )

    def handle(self, *args, fold_only=False, **options):
        if fold_only:
            self.stdout.write(f"Folded {fold_log_counts()} count deltas.")
            return
        recount_logs()
        self.stdout.write("Recounted the logs.")
