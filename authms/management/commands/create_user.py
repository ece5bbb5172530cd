import getpass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from authms.errors import ApplicationError
from authms.services import tenant_get, user_create


class Command(BaseCommand):
    help = "Create a user in a tenant. The password comes from --password or a prompt."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--tenant", required=True, help="Tenant id (tnt_…) or slug.")
        parser.add_argument("--email", default="")
        parser.add_argument("--phone", default="")
        parser.add_argument("--password", help="Omit to be prompted (recommended).")
        parser.add_argument("--staff", action="store_true", help="Tenant admin.")
        parser.add_argument("--superuser", action="store_true", help="Platform admin (all tenants).")

    def handle(self, *args, username, tenant, email, phone, password, staff, superuser, **options):
        if password is None:
            password = self._prompt_password()
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        try:
            user = user_create(
                tenant=tenant_get(ref=tenant),
                username=username,
                password=password,
                email=email,
                phone=phone,
                is_staff=staff,
                is_superuser=superuser,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        role = "platform admin" if superuser else "tenant admin" if staff else "user"
        self.stdout.write(self.style.SUCCESS(f"Created {role} {user.username}: {user.id}"))

    def _prompt_password(self) -> str:
        try:
            first = getpass.getpass("Password: ")
            second = getpass.getpass("Password (again): ")
        except (EOFError, KeyboardInterrupt) as exc:
            raise CommandError("No password given; pass --password or run interactively.") from exc
        if first != second:
            raise CommandError("The passwords do not match.")
        return first
