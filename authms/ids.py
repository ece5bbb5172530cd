"""Prefixed, time-sortable identifiers (`usr_01J…`, `log_01J…`).

A ULID body (48-bit millisecond timestamp + 80 random bits, Crockford base32) keeps
ids unguessable while letting `ORDER BY id` follow creation order, which the list
endpoints use as their tie-breaker after `created_at`. Ids minted together share the
timestamp and sort in list order, yet each has its own 80 random bits: knowing one id
of a batch does not reveal its neighbours.
"""

import os
import time

from django.db import models

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_LENGTH = 26


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))


def new_ulid(timestamp_ms: int | None = None) -> str:
    if timestamp_ms is None:
        timestamp_ms = time.time_ns() // 1_000_000
    randomness = int.from_bytes(os.urandom(10), "big")
    return _encode(timestamp_ms, 10) + _encode(randomness, 16)


def new_id(prefix: str, timestamp_ms: int | None = None) -> str:
    return f"{prefix}_{new_ulid(timestamp_ms)}"


class PrefixedIdField(models.CharField):
    """Primary key holding `<prefix>_<ulid>`, generated on instantiation."""

    def __init__(self, *args, prefix: str, **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", len(prefix) + 1 + ULID_LENGTH)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def get_default(self):
        return new_id(self.prefix)

    def has_default(self):
        return True

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        return name, path, args, kwargs


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` ids sharing one timestamp whose sort order is their list order.

    Sorted independent random values rather than a counter from one random start (the
    monotonic-ULID recipe), which would make every other id of the batch guessable.
    """
    timestamp = _encode(time.time_ns() // 1_000_000, 10)
    pool = os.urandom(10 * count)
    randomness = sorted(int.from_bytes(pool[i : i + 10], "big") for i in range(0, 10 * count, 10))
    return [f"{prefix}_{timestamp}{_encode(value, 16)}" for value in randomness]
