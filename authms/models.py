from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from authms.compiled_queries import CompiledLookup
from authms.ids import PrefixedIdField
from authms.local_time import quiet_hours_field, time_zone_field


class Tenant(models.Model):
    id = PrefixedIdField(prefix="tnt")
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    sms_providers = models.CharField(
        _("SMS providers"),
        max_length=200,
        blank=True,
        help_text=_(
            "This tenant's SMS route, e.g. aliyun,submail: an order of the providers the deployment "
            "routes SMS to (SMS_PROVIDERS). Empty: the deployment's order."
        ),
    )
    send_caps = models.JSONField(
        _("sending caps"),
        default=dict,
        blank=True,
        help_text=_(
            'Messages a day and a month per channel, e.g. {"sms": {"day": 10000, "month": 200000}}; '
            "0 means no cap. A channel or period left out uses the deployment's default (CAP_<CHANNEL>_<PERIOD>)."
        ),
    )
    time_zone = time_zone_field(
        _("Where the tenant's quiet hours are read for users with no time zone. Empty: CAPS_TIME_ZONE.")
    )
    quiet_hours = quiet_hours_field(
        _(
            "e.g. 21:00-08:00 in each recipient's local time: non-critical messages falling inside wait "
            "until the window ends. Empty: none (users may still set their own)."
        )
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_(
            "Of notices for users who chose none and whose app sends no Accept-Language. Empty: LANGUAGE_CODE."
        ),
    )
    preference_defaults = models.JSONField(
        _("preference defaults"),
        default=dict,
        blank=True,
        help_text=_(
            'What reaches a recipient who has not chosen, per category and channel, e.g. {"marketing": '
            '{"sms": false}}. Left out: on. Critical categories (security) cannot be off.'
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        caps = self.send_caps
        problem = not isinstance(caps, dict) or any(
            meter not in ("sms", "email", "push", "spend")
            or not isinstance(periods, dict)
            or any(
                period not in ("day", "month")
                or not isinstance(value, int | float if meter == "spend" else int)
                or isinstance(value, bool)
                or not 0 <= value < 10**12
                for period, value in periods.items()
            )
            for meter, periods in (caps.items() if isinstance(caps, dict) else [])
        )
        if problem:
            raise ValidationError(
                {
                    "send_caps": _(
                        'Per channel (sms, email, push) a "day" and/or "month" count of 0 or more; '
                        '"spend": the same in money (e.g. 500.5).'
                    )
                }
            )
        from communication.preferences import preference_defaults_problem

        problem = preference_defaults_problem(self.preference_defaults)
        if problem:
            raise ValidationError({"preference_defaults": problem})


class TenantUserManager(UserManager):
    _with_tenant = CompiledLookup(lambda user_id: User.objects.by_id_with_tenant(user_id))

    def by_id_with_tenant(self, user_id: str) -> models.QuerySet:
        """The query every authenticated request reads its user with (more may be annotated)."""
        return self.select_related("tenant").filter(id=user_id)

    def with_tenant(self, user_id: str) -> "User | None":
        """The user and their tenant, as every authenticated request loads them (compiled once)."""
        return self._with_tenant.first(user_id)


class User(AbstractUser):
    """A person in one tenant. `is_staff` = tenant admin, `is_superuser` = platform admin."""

    id = PrefixedIdField(prefix="usr")
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="users", verbose_name=_("tenant")
    )
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    time_zone = time_zone_field(
        _("Where this user's quiet hours are read. Empty: a device's, else the tenant's.")
    )
    quiet_hours = quiet_hours_field(_('e.g. 22:00-07:00; "off" for none; empty: the tenant\'s.'))
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_("Notices are shown in it. Empty: the request's Accept-Language, else the tenant's."),
    )
    token_version = models.PositiveIntegerField(
        _("token version"),
        default=0,
        editable=False,
        help_text=_("Raised to revoke every token of the user (logout everywhere, deactivation)."),
    )

    objects = TenantUserManager()
    REQUIRED_FIELDS = ["email"]

    @classmethod
    def from_db(cls, db, field_names, values):
        user = super().from_db(db, field_names, values)
        user._loaded_active = user.__dict__.get("is_active")
        return user

    def save(self, *args, **kwargs):
        # Stored as E.164 when it parses, like every recipient, so a bulk's numbers find their users.
        from communication.recipients import normalise_phone

        number = normalise_phone(self.phone) if self.phone else None
        if number is not None and number.is_valid:
            self.phone = number.value
        # Deactivation revokes every token, so reactivating the account does not revive them.
        if getattr(self, "_loaded_active", None) and not self.is_active:
            self.token_version += 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "token_version"}
        super().save(*args, **kwargs)
        self._loaded_active = self.is_active

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        indexes = [
            models.Index(fields=["tenant", "username"]),
            # Recipients of a bulk → the users they are (preferences, quiet hours), in one query.
            models.Index(fields=["tenant", "phone"], name="user_tenant_phone"),
            models.Index("tenant", Lower("email"), name="user_tenant_email"),
        ]

    @property
    def is_tenant_admin(self) -> bool:
        return self.is_staff or self.is_superuser

    @property
    def is_platform_admin(self) -> bool:
        return self.is_superuser


class RevokedToken(models.Model):
    """A refresh token revoked before its expiry (logout on one device), kept until it expires."""

    jti = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return self.jti


class IdempotencyKey(models.Model):
    """The first response to a request sent with an `Idempotency-Key` header, kept for replay."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "key"], name="idempotency_unique_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self):
        return self.key
