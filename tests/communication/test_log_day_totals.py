"""The user list's exact total between two times (#20): whole UTC days from the per-user day
totals (LogUserDayCount), the partial days at either end counted in the log table up to
LOG_LIST_COUNT_CAP rows each. Runs on PostgreSQL (deltas, folded or not) and on SQLite."""

from datetime import UTC, datetime, timedelta

import pytest

from communication.models import CommunicationLog
from communication.services.log_counts import fold_log_counts
from tests.factories import LogFactory

USER_URL = "/api/v1/communication/logs"
ADMIN_URL = "/api/v1/admin/communication/logs"
MIDNIGHT = datetime(2026, 11, 20, tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@pytest.fixture
def spread(alice, ada, bob):
    """Alice: logs every 5 hours over 6 days from MIDNIGHT, and at both sides of each midnight;
    ada (same tenant) and bob (another) at the same times, never counted for alice."""
    moments = [MIDNIGHT + timedelta(hours=5 * step) for step in range(30)]
    moments += [
        MIDNIGHT + timedelta(days=day, microseconds=delta) for day in range(1, 6) for delta in (-1, 0)
    ]
    for moment in moments:
        for user in (alice, ada, bob):
            LogFactory(user=user, created_at=moment)
    return moments


WINDOWS = [
    (MIDNIGHT + timedelta(hours=7), MIDNIGHT + timedelta(days=3, hours=2)),  # partial days at both ends
    (MIDNIGHT + timedelta(days=1), MIDNIGHT + timedelta(days=4)),  # whole days only
    (MIDNIGHT + timedelta(days=1, microseconds=-1), MIDNIGHT + timedelta(days=1, microseconds=1)),
    (MIDNIGHT + timedelta(days=2, hours=1), MIDNIGHT + timedelta(days=2, hours=20)),  # one day
    (MIDNIGHT + timedelta(days=2, hours=20), MIDNIGHT + timedelta(days=3, hours=4)),  # adjacent days
    (MIDNIGHT + timedelta(days=3), MIDNIGHT + timedelta(days=3)),  # empty
    (MIDNIGHT + timedelta(days=4), MIDNIGHT + timedelta(days=1)),  # backwards
    (MIDNIGHT + timedelta(hours=13), None),
    (None, MIDNIGHT + timedelta(days=2, hours=9, minutes=30)),
    (MIDNIGHT - timedelta(days=400), None),
]


def _params(after, before) -> dict:
    return {
        **({"created_after": rfc3339(after)} if after else {}),
        **({"created_before": rfc3339(before)} if before else {}),
    }


def _expected(user, after, before) -> int:
    logs = CommunicationLog.objects.filter(user=user)
    if after:
        logs = logs.filter(created_at__gte=after)
    if before:
        logs = logs.filter(created_at__lt=before)
    return logs.count()


@pytest.mark.parametrize("folded", [False, True])
def test_every_window_is_counted_exactly(
    client_for, alice, ada, spread, folded, settings, django_assert_max_num_queries
):
    settings.LOG_LIST_COUNT_CAP = 4  # below most windows: a COUNT would say "capped"
    if folded:
        fold_log_counts()
    for after, before in WINDOWS:
        expected = _expected(alice, after, before)
        for client, url, params in (
            (client_for(alice), USER_URL, {}),
            (client_for(ada), ADMIN_URL, {"user_id": alice.id}),
        ):
            with django_assert_max_num_queries(3):
                body = client.get(url, {**params, **_params(after, before), "page_size": 1}).json()
            assert (body["total"], body["total_is_capped"]) == (expected, False), (url, after, before)


def test_a_partial_day_past_the_cap_makes_the_total_a_floor(client_for, alice, spread, settings):
    settings.LOG_LIST_COUNT_CAP = 2
    start = MIDNIGHT + timedelta(days=2, hours=1)
    LogFactory.create_batch(3, user=alice, created_at=start + timedelta(hours=1))
    body = (
        client_for(alice)
        .get(USER_URL, _params(start, MIDNIGHT + timedelta(days=4)) | {"page_size": 1})
        .json()
    )
    assert (body["total"], body["total_is_capped"]) == (2, True)


def test_other_filters_beside_the_times_are_counted_as_before(client_for, alice, spread, settings):
    settings.LOG_LIST_COUNT_CAP = 4
    params = _params(MIDNIGHT + timedelta(days=1), MIDNIGHT + timedelta(days=4)) | {
        "channel": "sms",
        "page_size": 1,
    }
    body = client_for(alice).get(USER_URL, params).json()
    assert (body["total"], body["total_is_capped"]) == (4, True)
