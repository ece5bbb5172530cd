from django.core.management.base import BaseCommand, CommandError

from authms.errors import ApplicationError
from authms.services import tenant_get
from communication.models import Category
from templates.services import template_create


def provider_code(value: str) -> tuple[str, str]:
    name, _, code = value.partition("=")
    if not name or not code:
        raise ValueError(value)
    return name.strip(), code.strip()


class Command(BaseCommand):
    help = (
        "Create a message template. Example: create_template acme verify_code --channel sms "
        '--body "Your code is {{code}}" --provider-code aliyun=SMS_123 --provider-code submail=abc12'
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="Tenant id (tnt_…) or slug.")
        parser.add_argument("code", help="What API clients pass as `template`.")
        parser.add_argument("--channel", required=True, choices=["sms", "email"])
        parser.add_argument("--body", required=True, help="Text with {{name}} placeholders.")
        parser.add_argument("--name", default="")
        parser.add_argument("--subject", default="", help="Email only.")
        parser.add_argument(
            "--provider-code",
            action="append",
            default=[],
            type=provider_code,
            metavar="PROVIDER=CODE",
            help="The approved template at a provider (repeat per provider).",
        )
        parser.add_argument("--sensitive", action="store_true", help="Mask variable values in stored logs.")
        parser.add_argument(
            "--category",
            default=Category.GENERAL,
            choices=Category.values,
            help="For recipients' preferences; security is critical (never off, not held by quiet hours).",
        )

    def handle(
        self, *args, tenant, code, channel, body, name, subject, provider_code, sensitive, category, **options
    ):
        try:
            template = template_create(
                tenant=tenant_get(ref=tenant),
                code=code,
                channel=channel,
                body=body,
                name=name,
                subject=subject,
                provider_codes=dict(provider_code),
                sensitive=sensitive,
                category=category,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Created template {template.code} ({template.channel}): {template.id}")
        )
