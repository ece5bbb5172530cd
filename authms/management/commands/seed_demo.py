"""Demo tenants, the four personas and a few hundred logs, so the embedded run has something to show."""

import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from authms.ids import new_id
from authms.models import Tenant, User
from authms.roles import make_tenant_admin
from communication.models import Channel, CommunicationLog, Device, Status

DEMO_PASSWORD = "demo-pass-2026"
PERSONAS = [
    # username, tenant slug, is_staff, is_superuser, description
    ("alice", "acme", False, False, "user, Acme"),
    ("ada", "acme", True, False, "tenant admin, Acme"),
    ("bob", "globex", False, False, "user, Globex"),
    ("root", "acme", True, True, "platform admin, all tenants"),
]
TENANTS = {"acme": "Acme Corp", "globex": "Globex"}


class Command(BaseCommand):
    help = "Create demo tenants, users (alice, ada, bob, root) and demo logs. Safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument("--logs", type=int, default=300, help="Demo logs to create per tenant.")
        parser.add_argument("--password", default=DEMO_PASSWORD)

    @transaction.atomic
    def handle(self, *args, logs, password, **options):
        tenants = {
            slug: Tenant.objects.get_or_create(slug=slug, defaults={"name": name})[0]
            for slug, name in TENANTS.items()
        }
        users = {}
        for username, slug, is_staff, is_superuser, _ in PERSONAS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "tenant": tenants[slug],
                    "email": f"{username}@example.com",
                    "phone": "+8613800138000",
                    "is_staff": is_staff,
                    "is_superuser": is_superuser,
                },
            )
            if created:
                user.set_password(password)
                user.save(update_fields=["password"])
            if is_staff and not is_superuser:
                make_tenant_admin(user)
            users[username] = user
        for username in ("alice", "bob"):  # a phone each, so push has somewhere to go
            user = users[username]
            Device.objects.get_or_create(
                tenant_id=user.tenant_id,
                provider=Device.Provider.FCM,
                token=f"demo-{username}:APA91b-demo-token-0000000000",
                defaults={"user": user, "platform": Device.Platform.ANDROID, "name": f"{username}'s phone"},
            )
        for tenant in tenants.values():
            if not CommunicationLog.objects.filter(tenant=tenant).exists():
                owners = [u for u in users.values() if u.tenant_id == tenant.id]
                device = Device.objects.filter(tenant=tenant).first()
                CommunicationLog.objects.bulk_create(_demo_logs(tenant, owners, logs, device), batch_size=500)

        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Logins (password {password!r}):"))
        for username, _, _, _, description in PERSONAS:
            self.stdout.write(f"  {username:<6} {description}")


def _demo_logs(tenant, owners, count, device):
    rng = random.Random(tenant.slug)
    now = timezone.now()
    outcomes = [Status.DELIVERED] * 6 + [Status.SENT] * 2 + [Status.FAILED, Status.PENDING]
    for index in range(count):
        created = now - timedelta(minutes=rng.randint(1, 7 * 24 * 60))
        channel = Channel.PUSH if index % 10 == 0 else Channel.SMS if index % 3 else Channel.EMAIL
        status = rng.choice(outcomes)
        owner = owners[index % len(owners)]
        recipient = {
            Channel.SMS: f"+86139{rng.randint(10_000_000, 99_999_999)}",
            Channel.EMAIL: f"customer{index}@example.com",
            Channel.PUSH: device.id,
        }[channel]
        yield CommunicationLog(
            id=new_id("log", int(created.timestamp() * 1000)),
            tenant=tenant,
            user=owner,
            channel=channel,
            provider="smtp" if channel == Channel.EMAIL else "console",
            recipient=recipient,
            subject="" if channel == Channel.SMS else "Your order has shipped",
            content=f"Hello, your order #{10_000 + index} has shipped.",
            status=status,
            error=_demo_error(channel) if status == Status.FAILED else None,
            sent_at=created + timedelta(seconds=2) if status in (Status.SENT, Status.DELIVERED) else None,
            delivered_at=created + timedelta(seconds=2 + rng.randint(3, 40))
            if status == Status.DELIVERED
            else None,
            created_at=created,
        )


def _demo_error(channel):
    return {
        Channel.SMS: "Recipient number does not exist (demo)",
        Channel.EMAIL: "Mailbox does not exist (demo)",
        Channel.PUSH: "The app was uninstalled: FCM UNREGISTERED (demo)",
    }[channel]
