"""`Idempotency-Key` support for write endpoints.

The key row is inserted in the same transaction as the work it guards, so a concurrent
duplicate waits on the unique index and then replays the committed response; a failed
request rolls the key back and can be retried with the same key.
"""

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from authms.errors import ConflictError, ValidationError
from authms.models import IdempotencyKey, User

MAX_KEY_LENGTH = 255
# Printable ASCII only: keys are compared and stored as text, and a NUL would fail in PostgreSQL.
_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")


def request_fingerprint(method: str, path: str, body) -> str:
    canonical = json.dumps(
        [method, path.rstrip("/"), body], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyKey, fingerprint: str) -> tuple[int, dict]:
    if record.request_hash != fingerprint:
        raise ConflictError(_("This Idempotency-Key was already used with a different request body."))
    return record.status_code, record.response


def run_idempotent(
    *, actor: User, key: str | None, fingerprint: str, produce: Callable[[], tuple[int, dict]]
) -> tuple[int, dict]:
    """Run `produce` once per (tenant, user, key) within the TTL; replay its response after."""
    if key is None:
        with transaction.atomic(durable=True):
            return produce()
    if not _KEY.fullmatch(key):
        message = _("Idempotency-Key must be 1 to %(max)d printable ASCII characters.") % {
            "max": MAX_KEY_LENGTH
        }
        raise ValidationError.for_field("Idempotency-Key", message)

    scope = {"tenant_id": actor.tenant_id, "user_id": actor.id, "key": key}
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    existing = IdempotencyKey.objects.filter(**scope).first()
    if existing is not None and existing.created_at >= cutoff:
        return _replay(existing, fingerprint)
    try:
        with transaction.atomic(durable=True):
            IdempotencyKey.objects.filter(**scope, created_at__lt=cutoff).delete()
            record = IdempotencyKey.objects.create(**scope, request_hash=fingerprint)
            status_code, body = produce()
            record.status_code, record.response = status_code, body
            record.save(update_fields=["status_code", "response"])
            return status_code, body
    except IntegrityError:
        # A concurrent request with the same key committed first.
        return _replay(IdempotencyKey.objects.get(**scope), fingerprint)


def purge_expired_keys() -> int:
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
