"""GET /api/v1/notifications/stream: the inbox as Server-Sent Events.

A small async Django view rather than django-eventstream: the stream is per user and already
has its source of truth (the inbox table and the count row), so all it needs from a library is
fan-out, which one Redis subscription per process gives (notifications.live). Served by an ASGI
server (uvicorn), an open stream costs a coroutine, not a thread.

Events:
- `counts` `{"unread": N, "unseen": M}`: at once on connect, then whenever they change.
- `notification` (the list's item, in the reader's language), with `id:` its position. A client
  reconnecting sends it back as `Last-Event-ID` (EventSource does) or `?last_event_id=`, and gets
  every notification after it: each user's notifications commit in that order, so none is
  skipped. A missing or unreadable id starts a fresh stream (from now).
- `reset`: more than REPLAY_LIMIT notifications to catch up on; reload the list.
- a `: keep-alive` comment every NOTIFICATION_STREAM_HEARTBEAT seconds, for proxies.

A stream ends after NOTIFICATION_STREAM_MAX_AGE seconds (or when the database fails); the client
reconnects, which is when its credentials are checked again.
"""

import asyncio
import json
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.http import StreamingHttpResponse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import AuthenticationFailed

from authms.api.authentication import TenantJWTAuthentication
from authms.api.cursor import decode_cursor, encode_cursor
from authms.api.exceptions import detail_message, json_error_response
from authms.errors import ValidationError
from authms.models import User
from notifications import selectors
from notifications.api.serializers import NotificationSerializer
from notifications.api.views import reader_language
from notifications.live import current_hub, loop_local, stream_token_user

logger = logging.getLogger(__name__)

REPLAY_LIMIT = 500
READ_BATCH = 1000
GATHER_SECONDS = 0.005
RETRY_MS = 2000


def _authenticated(request) -> User:
    """A bearer access token (header), else a stream token (`?token=`): EventSource cannot set
    headers. Raises AuthenticationFailed."""
    authenticated = TenantJWTAuthentication().authenticate(request)
    if authenticated is not None:
        return authenticated[0]
    token = request.GET.get("token")
    if not token:
        raise AuthenticationFailed(_("Authentication credentials were not provided."))
    return stream_token_user(token)


def _resume_point(request) -> selectors.Position | None:
    """Where the client left off, or None (also for an id that is not one of ours)."""
    last = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    if not last:
        return None
    try:
        return decode_cursor(last)
    except ValidationError:
        return None


def _in_pool(function):
    """`function` as a coroutine run in the shared thread pool, with Django's connection upkeep
    around it (outside a request nothing else closes a broken or expired connection). Not the
    request's own thread: that one lives as long as the stream, and its connection with it."""

    def run(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)


def _opened(request) -> tuple[User, str, selectors.Position]:
    user = _authenticated(request)
    request.user = user
    return user, reader_language(request), _resume_point(request) or selectors.newest_position(user=user)


def _read(readers: list[tuple[User, str, selectors.Position]]):
    """For each (user, language, position): the notifications after it, serialized in the
    reader's language, and the counts. One query each for all readers."""
    # One snapshot for the rows and the counts: counts that already include a notification
    # the rows do not show yet would reach the client before the notification itself.
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        found = selectors.notifications_after_each(
            [(user, after) for user, _language, after in readers], limit=REPLAY_LIMIT + 1
        )
        counts = selectors.notification_counts_each([reader[0] for reader in readers])
    answers = []
    for (_user, language, _after), rows, count in zip(readers, found, counts, strict=True):
        with translation.override(language):
            answers.append((rows, NotificationSerializer(rows[:REPLAY_LIMIT], many=True).data, count))
    return answers


class BatchedReads:
    """Streams woken together read together: a tenant-wide notice wakes every stream of the
    tenant at once, and one query for all of them costs far less than one each. While a read
    runs, the streams woken meanwhile queue up and go in the next one."""

    def __init__(self):
        self._waiting: list[tuple[User, str, selectors.Position, asyncio.Future]] = []
        self._reader: asyncio.Task | None = None

    async def changes(self, user: User, language: str, after: selectors.Position):
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        self._waiting.append((user, language, after, answer))
        if self._reader is None or self._reader.done():
            self._reader = loop.create_task(self._read_waiting())
        return await answer

    async def _read_waiting(self):
        read = _in_pool(_read)
        while self._waiting:
            await asyncio.sleep(GATHER_SECONDS)  # the other streams woken by the same announcement queue up
            batch, self._waiting = self._waiting[:READ_BATCH], self._waiting[READ_BATCH:]
            try:
                answers = await read([waiting[:3] for waiting in batch])
            except Exception as error:  # noqa: BLE001 - handed to each stream waiting for this read
                answers = [error] * len(batch)
            for (*_reader, waiting), answer in zip(batch, answers, strict=True):
                if waiting.done():  # its stream was closed meanwhile
                    continue
                if isinstance(answer, Exception):
                    waiting.set_exception(answer)
                else:
                    waiting.set_result(answer)


current_reads = loop_local(BatchedReads)


def _event(name: str, data, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def _events(user: User, language: str, after: selectors.Position):
    reads = current_reads()
    hub = current_hub()
    wake = hub.listen(user.id)
    loop = asyncio.get_running_loop()
    ends = loop.time() + settings.NOTIFICATION_STREAM_MAX_AGE
    # Without Redis nothing wakes a stream: it reads each second instead.
    wait = settings.NOTIFICATION_STREAM_HEARTBEAT if settings.REDIS_URL else 1.0
    newest_position = _in_pool(selectors.newest_position)
    counts = None
    try:
        yield f"retry: {RETRY_MS}\n\n"
        quiet_since = loop.time()
        while loop.time() < ends:
            wake.clear()
            try:
                rows, items, now_counts = await reads.changes(user, language, after)
                if len(rows) > REPLAY_LIMIT:
                    after = await newest_position(user=user)
            except DatabaseError as error:
                logger.warning("Inbox stream of %s ends: %s", user.id, error)
                return
            events = []
            if len(rows) > REPLAY_LIMIT:
                with translation.override(language):
                    reason = _("Too much to catch up on: reload the list.")
                events.append(_event("reset", {"reason": reason}, encode_cursor(*after)))
            else:
                for row, item in zip(rows, items, strict=True):
                    after = (row.created_at, row.id)
                    events.append(_event("notification", item, encode_cursor(*after)))
            if now_counts != counts:
                counts = now_counts
                events.append(_event("counts", counts))
            if events:
                yield "".join(events)
                quiet_since = loop.time()
            try:
                await asyncio.wait_for(wake.wait(), timeout=max(0.0, min(wait, ends - loop.time())))
            except TimeoutError:
                if loop.time() - quiet_since >= settings.NOTIFICATION_STREAM_HEARTBEAT:
                    yield ": keep-alive\n\n"
                    quiet_since = loop.time()
    finally:
        hub.forget(user.id, wake)


@csrf_exempt  # like every API view: no cookies authenticate here
async def notification_stream(request):
    if request.method != "GET":
        response = json_error_response(405, _("Method not allowed."))
        response["Allow"] = "GET"
        return response
    try:
        user, language, after = await _in_pool(_opened)(request)
    except AuthenticationFailed as error:
        response = json_error_response(401, detail_message(error))
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    response = StreamingHttpResponse(_events(user, language, after), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
