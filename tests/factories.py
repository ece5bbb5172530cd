import factory
from django.utils import timezone

from authms.models import Tenant, User
from communication.models import Channel, CommunicationLog, Status


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def persist_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class LogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommunicationLog

    user = factory.SubFactory(UserFactory)
    tenant = factory.LazyAttribute(lambda log: log.user.tenant)
    channel = Channel.SMS
    provider = "console"
    recipient = "+8613800138000"
    content = "Your code is 123456"
    status = Status.PENDING
    created_at = factory.LazyFunction(timezone.now)
