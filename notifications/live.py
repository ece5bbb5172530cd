"""Real-time inbox: who to wake, and how web processes hear of it.

A change to a user's inbox (new notification, read, seen, archived, deleted) is announced after
its transaction commits: the user's id is published on one Redis channel. Every web process
subscribes once (`InboxHub`) and wakes the open streams of the users named; a stream then reads
what changed from the database. So the message carries no content, a lost message costs only
delay (each stream also re-reads on its heartbeat), and any number of web processes can serve
streams. Without Redis (the embedded run: one process) streams poll the database each second.

EventSource cannot set an Authorization header, so a stream may also be opened with a stream
token: signed, naming one user, valid for NOTIFICATION_STREAM_TOKEN_TTL seconds to connect.
"""

import asyncio
import logging
import weakref
from collections import defaultdict
from collections.abc import Iterable

import redis
import redis.asyncio
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework.exceptions import AuthenticationFailed

from authms.iterables import chunked
from authms.models import User
from authms.tokens import VERSION_CLAIM, check_user_may_use, id_claim, token_version_claim

logger = logging.getLogger(__name__)

CHANNEL = "authms:inbox:changed"
_TOKEN_SALT = "notifications.stream"
_USERS_PER_MESSAGE = 1000


def stream_token(user: User) -> str:
    """Carries the claims an access token would, so a logout or password change revokes it too."""
    claims = {"user_id": user.id, "tenant_id": user.tenant_id, VERSION_CLAIM: token_version_claim(user)}
    return signing.dumps(claims, salt=_TOKEN_SALT, compress=False)


def stream_token_user(token: str) -> User:
    """The user a current stream token names, checked as an access token's would be."""
    refused = AuthenticationFailed(_("The stream token is invalid or expired; ask for a new one."))
    try:
        claims = signing.loads(token, salt=_TOKEN_SALT, max_age=settings.NOTIFICATION_STREAM_TOKEN_TTL)
    except signing.BadSignature:  # SignatureExpired is one
        raise refused from None
    if not isinstance(claims, dict):
        raise refused
    user = User.objects.with_tenant(id_claim(claims, "user_id"))
    return check_user_may_use(user, claims)


_publisher: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _publisher
    if _publisher is None:
        _publisher = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    return _publisher


def _publish(user_ids: list[str]) -> None:
    try:
        with _redis().pipeline(transaction=False) as pipe:
            for chunk in chunked(user_ids, _USERS_PER_MESSAGE):
                pipe.publish(CHANNEL, " ".join(chunk))
            pipe.execute()
    except redis.RedisError as error:  # streams still re-read on their heartbeat
        logger.warning("Inbox change not announced to live streams (%s): %s", len(user_ids), error)


def announce(user_ids: Iterable[str]) -> None:
    """After the current transaction commits (at once outside one), wake these users' streams."""
    if not settings.REDIS_URL:
        return
    wanted = list(dict.fromkeys(user_ids))
    if wanted:
        transaction.on_commit(lambda: _publish(wanted))


class InboxHub:
    """One Redis subscription per web process, fanned out to the streams open in it."""

    def __init__(self):
        self._listeners: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task | None = None

    def listen(self, user_id: str) -> asyncio.Event:
        """An event set whenever `user_id`'s inbox may have changed."""
        if settings.REDIS_URL and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run())
        wake = asyncio.Event()
        self._listeners[user_id].add(wake)
        return wake

    def forget(self, user_id: str, wake: asyncio.Event) -> None:
        listeners = self._listeners.get(user_id)
        if listeners is not None:
            listeners.discard(wake)
            if not listeners:
                del self._listeners[user_id]

    @property
    def open_streams(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())

    def _wake(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            for wake in self._listeners.get(user_id, ()):
                wake.set()

    def _wake_everyone(self) -> None:
        self._wake(list(self._listeners))

    async def _run(self) -> None:
        """Subscribe, and resubscribe after any failure (waking every stream to re-read what
        it may have missed meanwhile)."""
        backoff = 0.5
        while self._listeners:
            client = redis.asyncio.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=30
            )
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._wake_everyone()
                    backoff = 0.5
                    while self._listeners:
                        message = await pubsub.get_message(timeout=settings.NOTIFICATION_STREAM_HEARTBEAT)
                        if message is not None:
                            self._wake(message["data"].decode().split())
            except (redis.RedisError, OSError) as error:
                logger.warning("Inbox change subscription lost, retrying in %.1fs: %s", backoff, error)
                self._wake_everyone()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
            finally:
                await client.aclose()


def loop_local(factory):
    """A getter of one `factory()` per running event loop (asyncio objects belong to a loop;
    a web process runs one)."""
    instances: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get():
        loop = asyncio.get_running_loop()
        if loop not in instances:
            instances[loop] = factory()
        return instances[loop]

    return get


current_hub = loop_local(InboxHub)
