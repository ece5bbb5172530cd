"""Deep pages of the admin log list found through the hourly counts (selectors.log_rows_at) are
the pages a plain OFFSET gives, with and without filters, across hours and unfolded deltas."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from authms.api import pagination
from communication import selectors
from communication.models import Channel, CommunicationLog, Status
from communication.services.log_counts import fold_log_counts
from tests.factories import LogFactory, UserFactory

URL = "/api/v1/admin/communication/logs"
pytestmark = pytest.mark.django_db


@pytest.fixture
def logs(tenant_a, tenant_b):
    """90 logs over 7 hours (some hours empty, some sharing a created_at) in two tenants."""
    rng = random.Random(7)
    users = [UserFactory(tenant=tenant_a), UserFactory(tenant=tenant_a), UserFactory(tenant=tenant_b)]
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    shared = now - timedelta(hours=2)
    for i in range(90):
        created = (
            shared
            if i % 9 == 0
            else now - timedelta(hours=rng.choice([0, 1, 2, 4, 5, 6, 9]), minutes=rng.randrange(59))
        )
        LogFactory(
            user=rng.choice(users),
            channel=rng.choice([Channel.SMS, Channel.EMAIL]),
            provider=rng.choice(["console", "submail"]),
            status=rng.choice([Status.PENDING, Status.SENT, Status.FAILED]),
            created_at=created,
        )
    fold_log_counts()
    # Changes after the fold: on PostgreSQL they wait as deltas, at old hours too.
    changed = CommunicationLog.objects.filter(status=Status.PENDING).order_by("id")[:10]
    CommunicationLog.objects.filter(id__in=[log.id for log in changed]).update(status=Status.SENT)
    LogFactory(user=users[0], created_at=now - timedelta(hours=6))


def _pages(client, params: dict, page_size: int) -> list[list[str]]:
    pages, page = [], 1
    while True:
        body = client.get(URL, {**params, "page": page, "page_size": page_size}).json()
        pages.append([item["id"] for item in body["items"]])
        if not body["items"]:
            return pages
        page += 1


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"status": "sent"},
        {"channel": "email", "provider": "submail"},
        {"status": "failed", "channel": "sms"},
    ],
)
@pytest.mark.parametrize("spread", ["even", "uneven"])
def test_every_deep_page_is_the_offset_page(logs, client_for, ada, monkeypatch, params, spread):
    client = client_for(ada)
    monkeypatch.setattr(selectors, "HOUR_SKIP_OFFSET", 10**9)
    expected = _pages(client, params, page_size=4)
    monkeypatch.setattr(selectors, "HOUR_SKIP_OFFSET", 1)
    monkeypatch.setattr(pagination, "DEFERRED_OFFSET", 1)  # shallow pages never skip hours
    used, original = [], selectors._hour_at

    def hour_at(*args, share, **kwargs):
        used.append(share)
        # Uneven: the first window, sized for evenly spread logs, falls short and the next ones grow.
        return original(*args, share=share if spread == "even" else share / 1000, **kwargs)

    monkeypatch.setattr(selectors, "_hour_at", hour_at)
    assert _pages(client, params, page_size=4) == expected
    assert used, "the hourly counts were not asked"
    assert (
        len(expected) > 3
        and sum(map(len, expected))
        == CommunicationLog.objects.filter(tenant_id=ada.tenant_id, **params).count()
    )


def test_a_platform_admin_pages_every_tenant_or_one(logs, client_for, root, tenant_b, monkeypatch):
    client = client_for(root)
    for params in ({}, {"tenant_id": tenant_b.id}):
        monkeypatch.setattr(selectors, "HOUR_SKIP_OFFSET", 10**9)
        expected = _pages(client, params, page_size=7)
        monkeypatch.setattr(selectors, "HOUR_SKIP_OFFSET", 1)
        assert _pages(client, params, page_size=7) == expected


@pytest.mark.parametrize(
    "params", [{"status_detail": "rejected"}, {"user_id": "usr_x"}, {"status": ["sent", "failed"]}]
)
def test_filters_the_hours_do_not_count_skip_as_usual(logs, client_for, ada, monkeypatch, params):
    monkeypatch.setattr(selectors, "HOUR_SKIP_OFFSET", 1)
    monkeypatch.setattr(selectors, "_hour_at", lambda *a, **k: pytest.fail("asked the hours"))
    assert client_for(ada).get(URL, {**params, "page": 2, "page_size": 2}).status_code == 200
