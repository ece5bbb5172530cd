"""Push devices: registration (an idempotent upsert), deletion, and deactivation when a push
service says a target is gone."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from authms.errors import ValidationError
from authms.models import User
from communication.models import Device
from communication.push_targets import fcm_token_clean, subscription_clean
from communication.recipients import Recipient

PROFILE_FIELDS = ("app_id", "device_id", "name", "locale", "time_zone", "app_version")


def _target(*, platform: str, provider: str | None, token, subscription) -> dict:
    """The push service and its target fields, from what the app sent."""
    web_subscription = platform == Device.Platform.WEB and subscription is not None
    provider = provider or (Device.Provider.WEBPUSH if web_subscription else Device.Provider.FCM)
    if provider == Device.Provider.WEBPUSH:
        if platform != Device.Platform.WEB:
            raise ValidationError.for_field("provider", _("Web Push is for the web platform only."))
        if subscription is None:
            raise ValidationError.for_field("subscription", _("Web Push needs the browser's subscription."))
        cleaned = subscription_clean(subscription)
        return {
            "provider": provider,
            "token": cleaned["endpoint"],
            "p256dh": cleaned["p256dh"],
            "auth": cleaned["auth"],
        }
    if subscription is not None:
        raise ValidationError.for_field(
            "subscription", _("A subscription is for Web Push; FCM takes a token.")
        )
    return {"provider": provider, "token": fcm_token_clean(token), "p256dh": "", "auth": ""}


def device_register(
    *, user: User, platform: str, provider: str | None = None, token=None, subscription=None, **profile
) -> tuple[Device, bool]:
    """Registers a push target for `user`; returns (device, created).

    Idempotent: the same token (or endpoint) again updates its record and reactivates it. A
    token another user of the tenant registered moves to this user (a device has one person
    signed in). A new token from an install (`device_id`) the user registered before replaces
    that install's old token. Past DEVICES_PER_USER active devices the least recently seen is
    deactivated."""
    target = _target(platform=platform, provider=provider, token=token, subscription=subscription)
    values = {
        "user": user,
        "platform": platform,
        **target,
        **{field: profile.get(field) or "" for field in PROFILE_FIELDS},
        "active": True,
        "failure_count": 0,
        "last_error": "",
        "deactivated_at": None,
        "last_seen_at": timezone.now(),
    }
    key = {"tenant_id": user.tenant_id, "provider": target["provider"], "token": target["token"]}
    for _attempt in range(2):  # a concurrent first registration of the same token: update it
        with transaction.atomic():
            existing = Device.objects.select_for_update().filter(**key).first()
            if existing is not None:
                for field, value in values.items():
                    setattr(existing, field, value)
                existing.save()
                return existing, False
            try:
                with transaction.atomic():
                    device = Device.objects.create(tenant_id=user.tenant_id, **values)
            except IntegrityError:
                continue
            _retire_replaced(device)
            return device, True
    raise RuntimeError("device registration raced twice")  # pragma: no cover - cannot recur


def _retire_replaced(device: Device) -> None:
    """The install's previous token goes; past the per-user limit the stalest device rests."""
    mine = Device.objects.filter(tenant_id=device.tenant_id, user_id=device.user_id).exclude(id=device.id)
    if device.device_id:
        mine.filter(provider=device.provider, device_id=device.device_id).delete()
    active = mine.filter(active=True).order_by("-last_seen_at", "-id")
    stale = list(active.values_list("id", flat=True)[settings.DEVICES_PER_USER - 1 :])
    if stale:
        devices_deactivate(
            device_ids=stale,
            reason=_("Replaced: more than %(n)d devices.") % {"n": settings.DEVICES_PER_USER},
        )


def device_delete(*, device: Device) -> None:
    device.delete()


def devices_deactivate(*, device_ids, reason: str) -> int:
    """Stops sending to these targets (the push service said they are gone); kept for the record."""
    return Device.objects.filter(id__in=list(device_ids), active=True).update(
        active=False, deactivated_at=timezone.now(), last_error=reason
    )


def push_targets(*, tenant_id: str, user_ids: list[str]) -> list[tuple[Recipient, str]]:
    """Where a push to these users goes: for each distinct user id, in order, one (device,
    the provider serving its push service) per active device; a user of another tenant, an
    unknown id or a user with no active device gets one failed target saying why."""
    wanted = list(dict.fromkeys(raw.strip() for raw in user_ids))
    known = set(User.objects.filter(tenant_id=tenant_id, id__in=wanted).values_list("id", flat=True))
    devices: dict[str, list[Device]] = {}
    for device in Device.objects.filter(tenant_id=tenant_id, user_id__in=known, active=True).order_by("id"):
        devices.setdefault(device.user_id, []).append(device)
    targets = []
    for user_id in wanted:
        if user_id not in known:
            targets.append(
                (Recipient(raw=user_id, value=user_id[:40], error="No such user in this tenant."), "")
            )
        elif user_id not in devices:
            targets.append(
                (Recipient(raw=user_id, value=user_id, error="The user has no active push device."), "")
            )
        else:
            targets.extend(
                (Recipient(raw=user_id, value=device.id), settings.PUSH_PROVIDERS[device.provider])
                for device in devices[user_id]
            )
    return targets


def devices_count_failure(*, device_ids: list[str]) -> int:
    """One more transient failure (retried or unknown) on each device; registering resets it."""
    return Device.objects.filter(id__in=device_ids).update(failure_count=F("failure_count") + 1)
