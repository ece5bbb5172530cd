"""Writes for tenants and users: creation from the CLI and provisioning from external tokens."""

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from authms.errors import ConflictError, NotFoundError
from authms.ids import new_ulid
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


EXTERNAL_USERNAME_PREFIX = "ext:"


def _free_tenant_slug(tenant_id: str) -> str:
    slug = slugify(tenant_id)[:90] or "tenant"
    return slug if not Tenant.objects.filter(slug=slug).exists() else f"{slug}-{new_ulid()[-8:].lower()}"


def _claim_text(claims, name: str, max_length: int) -> str:
    value = claims.get(name)
    return value if isinstance(value, str) and len(value) <= max_length and "\x00" not in value else ""


def user_get_or_provision(*, claims) -> User | None:
    """The local user an external AuthMS token names, created on first sight; None if it
    cannot be (the caller answers 401).

    The external AuthMS owns identities; this service only needs a row to own logs and
    notifications. New users start as plain users in the token's tenant. Their usernames
    are namespaced (`ext:<name>`) so they never collide with, or impersonate, local ones.
    `user_id` and `tenant_id` were checked by the authentication class.
    """
    user = User.objects.with_tenant(claims["user_id"])
    if user is not None:
        return user
    tenant_id = claims["tenant_id"]
    tenant = Tenant.objects.filter(id=tenant_id).first()
    if tenant is None:
        try:
            with transaction.atomic():
                tenant = Tenant.objects.create(
                    id=tenant_id, name=tenant_id, slug=_free_tenant_slug(tenant_id)
                )
        except IntegrityError:
            tenant = Tenant.objects.filter(id=tenant_id).first()
            if tenant is None:
                return None
    name = _claim_text(claims, "username", 150 - len(EXTERNAL_USERNAME_PREFIX)) or claims["user_id"]
    for username in (f"{EXTERNAL_USERNAME_PREFIX}{name}", f"{EXTERNAL_USERNAME_PREFIX}{claims['user_id']}"):
        try:
            with transaction.atomic():
                user = User(
                    id=claims["user_id"],
                    tenant=tenant,
                    username=username,
                    email=_claim_text(claims, "email", 254),
                )
                user.set_unusable_password()
                user.save(force_insert=True)
            return user
        except IntegrityError:
            existing = User.objects.with_tenant(claims["user_id"])
            if existing is not None:  # created concurrently
                return existing
    return None
