from django.core.management.base import BaseCommand, CommandError

from authms.errors import ApplicationError
from authms.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant and print its id."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--slug", default="", help="URL-safe short name (default: from the name).")

    def handle(self, *args, name, slug, **options):
        try:
            tenant = tenant_create(name=name, slug=slug)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Created tenant {tenant.name} ({tenant.slug}): {tenant.id}"))
