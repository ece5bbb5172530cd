"""A compiled lookup or query answers exactly as the queryset it was compiled from (in the SQLite
pass too: its converters turn text back into datetimes, booleans and JSON there)."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Value
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authms import compiled_queries
from authms.compiled_queries import CompiledLookup, CompiledQuery
from authms.models import User
from communication.models import CommunicationLog
from notifications.selectors import user_with_inbox_counts
from notifications.services import notify
from tests.factories import LogFactory

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_the_user_with_tenant_is_the_querysets(alice, django_assert_num_queries):
    alice.last_login = timezone.now() - timedelta(days=2)
    alice.is_staff = True
    alice.save()
    alice.tenant.send_caps = {"sms": {"day": 10}}
    alice.tenant.quiet_hours = "21:00-08:00"
    alice.tenant.save()
    expected = User.objects.select_related("tenant").get(id=alice.id)

    with django_assert_num_queries(1):  # the tenant comes with the row
        compiled = User.objects.with_tenant(alice.id)
        assert compiled.tenant.send_caps == {"sms": {"day": 10}}

    assert _fields(compiled) == _fields(expected)
    assert _fields(compiled.tenant) == _fields(expected.tenant)
    assert type(compiled.last_login) is type(expected.last_login) and compiled.is_staff is True
    assert compiled._state.db == "default" and not compiled._state.adding
    # from_db ran: deactivating the loaded user revokes its tokens, as for any loaded user.
    compiled.is_active = False
    compiled.save()
    assert User.objects.get(id=alice.id).token_version == expected.token_version + 1


def test_each_call_reads_its_own_value_and_none_when_absent(alice, bob):
    assert User.objects.with_tenant(alice.id).username == "alice"
    assert User.objects.with_tenant(bob.id).username == "bob"
    assert User.objects.with_tenant(bob.id).tenant_id == bob.tenant_id
    assert User.objects.with_tenant("usr_missing") is None


def test_annotations_come_with_the_instance(alice, bob):
    for _ in range(3):
        notify(tenant_id=alice.tenant_id, user_ids=[alice.id], type="system", event_type="a.b", title="t")
    user = user_with_inbox_counts(alice.id)
    assert (user.inbox_unread, user.inbox_unseen) == (3, 3)
    assert user.tenant.id == alice.tenant_id
    # A user whose inbox was never written has no counts row: zeros, not None.
    assert (user_with_inbox_counts(bob.id).inbox_unread, user_with_inbox_counts(bob.id).inbox_unseen) == (
        0,
        0,
    )


def test_a_queryset_that_ignores_its_value_is_refused(alice):
    lookup = CompiledLookup(lambda _value: User.objects.filter(username=Value("alice")).annotate(n=F("id")))
    with pytest.raises(ValueError, match="must use every value"):
        lookup.first(alice.id)


@pytest.mark.django_db(transaction=True)
def test_threads_compiling_at_once_each_get_whole_sql(alice):
    """Each thread has its own connection, so each compiles: from its own queryset (compiling
    one Query in two threads at once lost the tenant's join: `missing FROM-clause entry`)."""
    import sys
    import threading

    from django.db import connection

    found, errors = [], []

    def read(lookup, start):
        start.wait()
        try:
            found.append(lookup.first(alice.id).tenant.slug)
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)
        finally:
            connection.close()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave inside a compilation, as on a busy machine
    try:
        for _round in range(20):
            lookup = CompiledLookup(User.objects.by_id_with_tenant)
            lookup.first("usr_missing")  # compiled once already, as after the first request
            start = threading.Barrier(8)
            threads = [threading.Thread(target=read, args=(lookup, start)) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert errors == [] and found == [alice.tenant.slug] * 160


LOGS = CompiledQuery(
    lambda **lookups: CommunicationLog.objects.filter(**lookups).order_by("-created_at", "-id")
)


@pytest.fixture
def spread_logs(alice, bob):
    """Logs of two users over ten hours, in two channels and three statuses."""
    now = timezone.now()
    for hour in range(10):
        for user in (alice, bob):
            LogFactory(
                user=user,
                channel=("sms", "email")[hour % 2],
                status=("sent", "failed", "delivered")[hour % 3],
                response=f"reply {hour}",
                created_at=now - timedelta(hours=hour),
                sent_at=now - timedelta(hours=hour, minutes=-1),
            )
    return now


def _lookup_sets(alice, now):
    return [
        {"tenant_id": alice.tenant_id, "user_id": alice.id},
        {"tenant_id": alice.tenant_id, "user_id": alice.id, "channel": "sms"},
        {"tenant_id": alice.tenant_id, "channel": "email", "status": "failed"},
        {"tenant_id": alice.tenant_id, "created_at__gte": now - timedelta(hours=4, minutes=30)},
        {
            "user_id": alice.id,
            "created_at__gte": now - timedelta(hours=8, minutes=30),
            "created_at__lt": now - timedelta(hours=2, minutes=30),
        },
        {"tenant_id": alice.tenant_id, "user_id": "usr_nobody"},
    ]


def test_every_page_and_count_is_the_querysets(alice, spread_logs):
    for lookups in _lookup_sets(alice, spread_logs):
        expected = LOGS.build(**lookups)
        for offset, limit in ((0, 3), (2, 3), (0, 50), (9, 5), (40, 5)):
            rows = LOGS.rows(lookups, offset=offset, limit=limit)
            assert [_fields(row) for row in rows] == [
                _fields(row) for row in expected[offset : offset + limit]
            ]
        for limit in (1, 3, 100):
            assert LOGS.count_upto(lookups, limit) == expected[:limit].count(), (lookups, limit)


def test_a_deep_page_skips_the_keys_and_reads_the_rows_kept(alice, spread_logs):
    for lookups in _lookup_sets(alice, spread_logs):
        expected = LOGS.build(**lookups)
        for offset, limit in ((0, 3), (2, 3), (7, 5), (40, 5)):
            rows = compiled_queries.run(LOGS.deep_rows_statement(lookups, offset=offset, limit=limit))
            assert [_fields(row) for row in rows] == [
                _fields(row) for row in expected[offset : offset + limit]
            ]


def test_a_deep_page_of_a_queryset_without_its_own_order_is_refused(alice):
    unordered = CompiledQuery(lambda **lookups: CommunicationLog.objects.filter(**lookups))
    with pytest.raises(ValueError, match="ordered by field names"):
        unordered.deep_rows_statement({"user_id": alice.id}, offset=5, limit=2)


def test_values_are_read_at_each_call_for_a_shape_compiled_once(alice, bob, spread_logs):
    mine = LOGS.rows({"user_id": alice.id, "channel": "sms"}, offset=0, limit=50)
    bobs = LOGS.rows({"user_id": bob.id, "channel": "email"}, offset=0, limit=50)
    assert len(mine) == len(bobs) == 5
    assert {(row.user_id, row.channel) for row in mine} == {(alice.id, "sms")}
    assert {(row.user_id, row.channel) for row in bobs} == {(bob.id, "email")}
    assert mine[0].created_at.tzinfo is not None and mine[0].sent_at > mine[0].created_at
    assert not mine[0]._state.adding and mine[0]._state.db == "default"


def test_shapes_past_the_limit_are_compiled_again(alice, spread_logs, monkeypatch):
    monkeypatch.setattr(compiled_queries, "MAX_SHAPES", 2)
    query = CompiledQuery(LOGS.build)
    lookup_sets = _lookup_sets(alice, spread_logs)
    for _round in range(2):
        for lookups in lookup_sets:
            assert query.count_upto(lookups, 100) == LOGS.build(**lookups).count()


def test_a_builder_that_drops_a_value_or_a_value_of_another_type_is_refused(alice):
    ignores_status = CompiledQuery(lambda user_id, status: CommunicationLog.objects.filter(user_id=user_id))
    with pytest.raises(ValueError, match="must use every value"):
        ignores_status.rows({"user_id": alice.id, "status": "sent"}, offset=0, limit=1)
    with pytest.raises(TypeError, match="text and datetimes"):
        LOGS.rows({"attempts": 3}, offset=0, limit=1)


def test_statements_run_together_answer_each_in_one_round_trip_on_postgresql(
    alice, spread_logs, on_postgres, django_assert_num_queries
):
    lookups = {"user_id": alice.id, "status": "failed"}
    with django_assert_num_queries(1 if on_postgres else 2):
        rows, count = compiled_queries.run_together(
            LOGS.rows_statement(lookups, offset=1, limit=2), LOGS.count_statement(lookups, 100)
        )
    expected = LOGS.build(**lookups)
    assert [row.id for row in rows] == [row.id for row in expected[1:3]] and count == expected.count() == 3


def test_rows_are_whole_model_instances_and_init_receivers_still_hear_of_them(alice, spread_logs):
    row = LOGS.rows({"user_id": alice.id}, offset=0, limit=1)[0]
    assert row.user == alice and row.tenant_id == alice.tenant_id  # related objects load as usual
    row.status = "delivered"
    row.save(update_fields=["status"])  # an UPDATE of a stored row, not an INSERT
    assert CommunicationLog.objects.get(id=row.id).status == "delivered"

    heard = []
    receiver = lambda sender, instance, **kwargs: heard.append(instance.id)  # noqa: E731
    post_init.connect(receiver, sender=CommunicationLog)
    try:
        rows = LOGS.rows({"user_id": alice.id}, offset=0, limit=3)
    finally:
        post_init.disconnect(receiver, sender=CommunicationLog)
    assert heard == [row.id for row in rows] and len(heard) == 3


def _prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'")


@postgresql_only
def test_statements_are_prepared_once_per_session_and_planned_generically(alice, spread_logs):
    compiled_queries._PREPARED.pop(connection.connection, None)  # as in a new session
    lookups = {"user_id": alice.id, "channel": "email"}
    with CaptureQueriesContext(connection) as first:
        LOGS.rows(lookups, offset=0, limit=2)
    with CaptureQueriesContext(connection) as again:
        rows = LOGS.rows(lookups | {"channel": "sms"}, offset=0, limit=2)
    with CaptureQueriesContext(connection) as later_page:
        LOGS.rows(lookups, offset=2, limit=2)  # a text per offset: not prepared
    assert "PREPARE authms_" in first.captured_queries[-1]["sql"]
    assert again.captured_queries[-1]["sql"].startswith("EXECUTE authms_")
    assert later_page.captured_queries[-1]["sql"].startswith("SELECT")
    assert [row.id for row in rows] == [row.id for row in LOGS.build(**lookups | {"channel": "sms"})[:2]]
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"


@postgresql_only
def test_one_prepared_statement_serves_a_deep_page_at_every_offset(alice, spread_logs):
    compiled_queries._PREPARED.pop(connection.connection, None)
    lookups = {"user_id": alice.id}
    pages = []
    with CaptureQueriesContext(connection) as queries:
        for offset in (1, 4, 7):
            statement = LOGS.deep_rows_statement(lookups, offset=offset, limit=2, prepare=True)
            pages.append(compiled_queries.run(statement))
    statements = [query["sql"] for query in queries.captured_queries]
    assert "PREPARE authms_" in statements[0]
    assert all(sql.startswith("EXECUTE authms_") for sql in statements[1:]), statements
    assert [[row.id for row in page] for page in pages] == [
        [row.id for row in LOGS.build(**lookups)[offset : offset + 2]] for offset in (1, 4, 7)
    ]


@postgresql_only
def test_without_prepared_statements_the_sql_runs_as_it_is(alice, spread_logs, settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    with CaptureQueriesContext(connection) as queries:
        assert LOGS.count_upto({"user_id": alice.id}, 100) == 10
    assert queries.captured_queries[-1]["sql"].startswith("SELECT COUNT(*)")


@postgresql_only
def test_the_oldest_prepared_statements_are_deallocated_past_the_limit(alice, spread_logs, monkeypatch):
    monkeypatch.setattr(compiled_queries, "MAX_PREPARED", 2)
    query = CompiledQuery(LOGS.build)
    for lookups in _lookup_sets(alice, spread_logs)[:4]:
        assert query.count_upto(lookups, 100) == LOGS.build(**lookups).count()
    prepared = compiled_queries._PREPARED[connection.connection].names
    assert len(prepared) == 2 and set(prepared.values()) <= _prepared_names()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_session_that_lost_its_prepared_statements_prepares_them_again(alice):
    lookup = CompiledLookup(User.objects.by_id_with_tenant)
    assert lookup.first(alice.id).id == alice.id
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as a pooler handing over another server session would
    assert lookup.first(alice.id).id == alice.id  # outside a transaction: prepared again
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(DatabaseError), transaction.atomic():
        lookup.first(alice.id)  # inside one, the error stands (the transaction is lost anyway)
    assert lookup.first(alice.id).id == alice.id
