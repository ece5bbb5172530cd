"""The persistent connection's health check (authms/postgresql): no round trip while the server
is quiet, and a connection the server ended is replaced before a request uses it."""

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'"),
]


def _next_request_runs_a_query() -> int:
    """What Django does around a request: the end of the last one, then the first query."""
    connection.close_if_unusable_or_obsolete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _end_from_the_server(pid: int):
    params = connection.get_connection_params()
    with psycopg.connect(**{**params, "autocommit": True}) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    socket = connection.connection.pgconn.socket
    deadline = time.monotonic() + 5
    from authms.postgresql.base import _has_data_waiting

    while not _has_data_waiting(socket):  # the server's FATAL message is on its way
        assert time.monotonic() < deadline, "the server's notice never arrived"
        time.sleep(0.01)


def test_a_quiet_connection_is_reused_without_a_round_trip(monkeypatch):
    pid = _next_request_runs_a_query()

    def no_round_trips(*args, **kwargs):
        raise AssertionError("the health check sent a query")

    monkeypatch.setattr(connection.connection, "cursor", no_round_trips)
    connection.close_if_unusable_or_obsolete()
    connection.close_if_health_check_failed()
    monkeypatch.undo()
    assert connection.health_check_done
    assert _next_request_runs_a_query() == pid


def test_a_connection_the_server_ended_is_replaced_before_use():
    pid = _next_request_runs_a_query()
    _end_from_the_server(pid)
    assert _next_request_runs_a_query() != pid  # no error: a new connection answered


def test_without_a_health_check_that_request_would_have_failed():
    """What the check spares (and so, that the test above can fail)."""
    pid = _next_request_runs_a_query()
    _end_from_the_server(pid)
    connection.health_check_done = True  # as with CONN_HEALTH_CHECKS off
    with pytest.raises(Exception, match="terminat|closed"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    connection.close()
