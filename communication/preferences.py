"""The rules of preferences that reads and writes share: tenant defaults and time zone."""

from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext as _

from authms.models import Tenant
from communication.models import CRITICAL_CATEGORIES, Category, Channel


def preference_defaults_problem(defaults) -> str | None:
    """Why a tenant's `preference_defaults` cannot be stored, or None."""
    if not isinstance(defaults, dict):
        return _('A map of category to channel to true/false, e.g. {"marketing": {"sms": false}}.')
    for category, channels in defaults.items():
        if category not in Category.values:
            return _("Unknown category %(category)r; the categories are %(known)s.") % {
                "category": category,
                "known": ", ".join(Category.values),
            }
        if not isinstance(channels, dict) or any(
            channel not in Channel.values or not isinstance(on, bool) for channel, on in channels.items()
        ):
            return _("Per channel (sms, email, push) true or false, for %(category)s.") % {
                "category": category
            }
        if category in CRITICAL_CATEGORIES and not all(channels.values()):
            return _("%(category)s is critical: it cannot be off.") % {"category": category}
    return None


def tenant_default(tenant: Tenant, category: str, channel: str) -> bool:
    return category in CRITICAL_CATEGORIES or (tenant.preference_defaults or {}).get(category, {}).get(
        channel, True
    )


def tenant_zone(tenant: Tenant) -> ZoneInfo:
    return ZoneInfo(tenant.time_zone or settings.CAPS_TIME_ZONE)
