"""Writes for tenants and users: creation from the CLI and provisioning from external tokens."""

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from authms.errors import ConflictError, NotFoundError
from authms.models import Tenant, User
from authms.roles import make_tenant_admin


@transaction.atomic
def tenant_create(*, name: str, slug: str = "") -> Tenant:
    slug = slug or slugify(name)
    if Tenant.objects.filter(slug=slug).exists():
        raise ConflictError(f"A tenant with slug {slug!r} already exists.")
    return Tenant.objects.create(name=name, slug=slug)


def tenant_get(*, ref: str) -> Tenant:
    """A tenant by id (`tnt_…`) or slug."""
    tenant = Tenant.objects.filter(id=ref).first() or Tenant.objects.filter(slug=ref).first()
    if tenant is None:
        raise NotFoundError(f"No tenant with id or slug {ref!r}.")
    return tenant


@transaction.atomic
def user_create(
    *,
    tenant: Tenant,
    username: str,
    password: str | None,
    email: str = "",
    phone: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    if User.objects.filter(username=username).exists():
        raise ConflictError(f"A user named {username!r} already exists.")
    user = User(
        tenant=tenant,
        username=username,
        email=email,
        phone=phone,
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    if user.is_staff and not user.is_superuser:
        make_tenant_admin(user)
    return user


def user_get_or_provision(*, claims: dict) -> User:
    """The local user an external AuthMS token names, created on first sight.

    The external AuthMS owns identities; this service only needs a row to own
    logs and notifications. New users start as plain users in the token's tenant.
    """
    user = User.objects.select_related("tenant").filter(id=claims["user_id"]).first()
    if user is not None:
        return user
    tenant_id = claims["tenant_id"]
    tenant, _ = Tenant.objects.get_or_create(
        id=tenant_id, defaults={"name": tenant_id, "slug": slugify(tenant_id)}
    )
    try:
        with transaction.atomic():
            user = User.objects.create(
                id=claims["user_id"],
                tenant=tenant,
                username=claims.get("username") or claims["user_id"],
                email=claims.get("email", ""),
            )
            user.set_unusable_password()
            user.save(update_fields=["password"])
    except IntegrityError:
        user = User.objects.select_related("tenant").get(id=claims["user_id"])
    return user
