"""Per-recipient frequency caps: how many messages of a class one recipient may get in a window.

Checked for a whole bulk in one query (counts per recipient and window over the tenant's recent
logs of the same channel and class), before anything is queued. Across two bulks sent at the
same moment to the same recipient the count is best effort: each sees the other only once
committed.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from communication.models import NEVER_HANDED_OVER, CommunicationLog, Status


def message_class(template) -> str:
    """ "code" for sensitive templates (verification codes), "notice" for everything else."""
    return "code" if template is not None and template.sensitive else "notice"


def frequency_capped(*, tenant_id: str, channel: str, template, recipients: list[str]) -> dict[str, str]:
    """Recipients one more message of this class would put over a cap → why (a readable reason)."""
    kind = message_class(template)
    caps = settings.FREQUENCY_CAPS.get(kind, [])
    if not caps or not recipients:
        return {}
    now = timezone.now()
    same_class = (
        Q(template__sensitive=True)
        if kind == "code"
        else Q(template__isnull=True) | Q(template__sensitive=False)
    )
    rows = (
        CommunicationLog.objects.filter(
            same_class,
            tenant_id=tenant_id,
            channel=channel,
            recipient__any=recipients,
            created_at__gt=now - timedelta(seconds=max(seconds for seconds, _most in caps)),
        )
        .exclude(status=Status.FAILED, status_detail__in=NEVER_HANDED_OVER)
        .values("recipient")
        .annotate(
            **{
                f"in_{seconds}": Count("id", filter=Q(created_at__gt=now - timedelta(seconds=seconds)))
                for seconds, _most in caps
            }
        )
        .order_by()
    )
    capped = {}
    for row in rows:
        for seconds, most in caps:
            if row[f"in_{seconds}"] >= most:
                capped[row["recipient"]] = (
                    f"Frequency cap: at most {most} {kind} message{'s' if most > 1 else ''} "
                    f"per {_window(seconds)} to this recipient."
                )
                break
    return capped


def _window(seconds: int) -> str:
    return {60: "minute", 3600: "hour", 86400: "day"}.get(seconds, f"{seconds} s")
