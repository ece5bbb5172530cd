"""The inbox's live stream (Server-Sent Events) under a real ASGI server (uvicorn), with the
real Redis announcing changes when the suite runs with services."""

import threading
import time

import httpx
import pytest
from django.db import connection, transaction
from django.utils import timezone

from authms.api.cursor import encode_cursor
from notifications import services
from notifications.live import stream_token
from notifications.models import Notification
from tests.asgi import open_stream
from tests.conftest import access_token_for

STREAM = "/api/v1/notifications/stream"


def _notify(user, title="Hello", **extra):
    services.notify(
        tenant_id=user.tenant_id,
        user_ids=[user.id],
        type="system",
        event_type="status.test.created",
        title=title,
        **extra,
    )
    return Notification.objects.filter(user=user).order_by("-created_at", "-id").first()


def _bearer(user) -> dict:
    return {"Authorization": f"Bearer {access_token_for(user)}"}


@pytest.fixture
def streams():
    opened = []

    def open_(*args, **kwargs):
        stream = open_stream(*args, **kwargs)
        opened.append(stream)
        return stream

    yield open_
    for stream in opened:
        stream.close()


def test_a_new_notification_and_the_counts_arrive_within_a_second(asgi_server, streams, alice, bob):
    stream = streams(asgi_server.url + STREAM, _bearer(alice))
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.next(name="counts").data == {"unread": 0, "unseen": 0}

    _notify(bob, "Not for alice")  # another tenant's user: never on alice's stream
    started = time.monotonic()
    created = _notify(alice, "Deploy finished")
    event = stream.next(timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert event.name == "notification"
    assert event.data["id"] == created.id and event.data["title"] == "Deploy finished"
    assert event.id == encode_cursor(created.created_at, created.id)
    assert stream.next(timeout=1.0).data == {"unread": 1, "unseen": 1}


def test_without_redis_streams_read_the_database_each_second(asgi_server, streams, alice, settings):
    """The embedded run (no REDIS_URL): nothing announces changes, so each stream polls."""
    settings.REDIS_URL = ""
    stream = streams(asgi_server.url + STREAM, _bearer(alice))
    stream.next(name="counts")
    created = _notify(alice, "polled")
    assert stream.next(timeout=1.5).data["id"] == created.id


def test_reading_seeing_and_archiving_push_the_new_counts(asgi_server, streams, alice):
    first, second = _notify(alice, "one"), _notify(alice, "two")
    stream = streams(asgi_server.url + STREAM, _bearer(alice))
    assert stream.next(name="counts").data == {"unread": 2, "unseen": 2}

    services.notifications_mark_seen(user=alice)
    assert stream.next(timeout=1.0).data == {"unread": 2, "unseen": 0}
    services.notification_mark_read(notification=first)
    assert stream.next(timeout=1.0).data == {"unread": 1, "unseen": 0}
    services.notification_archive(notification=second)
    assert stream.next(timeout=1.0).data == {"unread": 0, "unseen": 0}


def test_last_event_id_resumes_with_everything_after_it_and_nothing_before(asgi_server, streams, alice):
    first = _notify(alice, "one")
    second, third = _notify(alice, "two"), _notify(alice, "three")
    stream = streams(
        asgi_server.url + STREAM,
        {**_bearer(alice), "Last-Event-ID": encode_cursor(first.created_at, first.id)},
    )
    replayed = [stream.next(name="notification").data["id"], stream.next(name="notification").data["id"]]
    assert replayed == [second.id, third.id]
    assert stream.next().data == {"unread": 3, "unseen": 3}
    assert stream.quiet(0.5) == []


def test_a_garbage_last_event_id_is_ignored_and_the_stream_starts_fresh(asgi_server, streams, alice):
    _notify(alice, "old")
    for garbage in ("garbage", "eyJub3QiOiJhIGN1cnNvciJ9", "%00", "W10"):
        stream = streams(asgi_server.url + STREAM, {**_bearer(alice), "Last-Event-ID": garbage})
        assert stream.status == 200, garbage
        assert stream.next().name == "counts", garbage  # nothing replayed
        assert stream.quiet(0.3) == [], garbage
        created = _notify(alice, f"new after {garbage}")
        assert stream.next(timeout=1.0, name="notification").data["id"] == created.id
        stream.close()


def test_a_stream_token_opens_the_stream_for_eventsource(asgi_server, streams, alice, client_for):
    answer = client_for(alice).post("/api/v1/notifications/stream-token")
    assert answer.status_code == 200
    assert answer.json()["data"]["expires_in"] == 60
    stream = streams(f"{asgi_server.url}{STREAM}?token={answer.json()['data']['token']}")
    assert stream.status == 200
    assert stream.next().name == "counts"


def test_an_expired_tampered_or_revoked_stream_token_is_a_401(asgi_server, alice, settings):
    token = stream_token(alice)
    url = asgi_server.url + STREAM
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert httpx.get(f"{url}?token={tampered}").status_code == 401
    settings.NOTIFICATION_STREAM_TOKEN_TTL = 0
    expired = httpx.get(f"{url}?token={token}")
    assert expired.status_code == 401
    assert expired.json()["message"] == "The stream token is invalid or expired; ask for a new one."
    settings.NOTIFICATION_STREAM_TOKEN_TTL = 60
    alice.set_password("another-pass-word-9")  # revokes every token of hers
    alice.save()
    assert httpx.get(f"{url}?token={token}").status_code == 401


def test_no_or_bad_credentials_and_other_methods_are_answered_with_the_envelope(asgi_server, alice):
    url = asgi_server.url + STREAM
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        answer = httpx.get(url, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["code"] == 401
    posted = httpx.post(url, headers=_bearer(alice))
    assert posted.status_code == 405 and posted.json()["code"] == 405


def test_keep_alive_comments_flow_while_nothing_happens(asgi_server, streams, alice, settings):
    settings.NOTIFICATION_STREAM_HEARTBEAT = 1
    stream = streams(asgi_server.url + STREAM, _bearer(alice))
    stream.next(name="counts")
    time.sleep(2.5)
    assert len(stream.comments) >= 1 and stream.comments[0] == ": keep-alive"


def test_a_stream_ends_at_its_maximum_age(asgi_server, streams, alice, settings):
    settings.NOTIFICATION_STREAM_MAX_AGE = 1
    stream = streams(asgi_server.url + STREAM, _bearer(alice))
    stream.next(name="counts")
    time.sleep(1.5)
    assert stream._response.is_closed  # the server ended it; EventSource would reconnect


def test_each_users_notifications_are_stamped_after_the_previous_writer_committed(transactional_db, alice):
    """The stream's gap-free promise: a later commit never carries an earlier created_at. The
    second writer stamps only once the first, still in its transaction, has committed."""
    first_committed_at = {}
    inside = threading.Event()

    def first_writer():
        try:
            with transaction.atomic():
                _notify(alice, "first")
                inside.set()
                time.sleep(0.5)
                first_committed_at["at"] = timezone.now()
        finally:
            connection.close()

    writer = threading.Thread(target=first_writer)
    writer.start()
    inside.wait(5)
    second = _notify(alice, "second")  # blocks until the first writer commits
    writer.join()
    assert second.created_at >= first_committed_at["at"]


def test_a_tenant_wide_notice_reaches_every_open_stream_of_the_tenant_only(
    asgi_server, streams, alice, ada, bob
):
    opened = {user.username: streams(asgi_server.url + STREAM, _bearer(user)) for user in (alice, ada, bob)}
    for stream in opened.values():
        stream.next(name="counts")
    services.notify(
        tenant_id=alice.tenant_id, whole_tenant=True, type="system", event_type="a.b", title="All hands"
    )
    for name in ("alice", "ada"):
        assert opened[name].next(timeout=1.0, name="notification").data["title"] == "All hands"
    assert opened["bob"].quiet(0.5) == []


def test_too_much_to_replay_sends_reset_and_the_stream_goes_on_from_the_newest(
    asgi_server, streams, alice, monkeypatch
):
    monkeypatch.setattr("notifications.api.stream.REPLAY_LIMIT", 2)
    first = _notify(alice, "one")
    _notify(alice, "two")
    _notify(alice, "three")
    newest = _notify(alice, "four")
    stream = streams(
        asgi_server.url + STREAM,
        {**_bearer(alice), "Last-Event-ID": encode_cursor(first.created_at, first.id)},
    )
    reset = stream.next()
    assert reset.name == "reset" and reset.id == encode_cursor(newest.created_at, newest.id)
    assert stream.next().name == "counts"
    created = _notify(alice, "five")
    assert stream.next(timeout=1.0).data["id"] == created.id
