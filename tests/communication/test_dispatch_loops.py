"""DISPATCH_THREADS loops in one dispatch: chunks go out side by side, each message once."""

import threading
from collections import Counter

import pytest
from django.db import connections, transaction

from communication.models import CommunicationLog
from communication.services import dispatch as dispatch_module
from communication.services import dispatch_pending
from tests.factories import TenantFactory, UserFactory


@pytest.fixture
def slow_gateway(settings, fake_submail):
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "submail"}
    settings.DISPATCH_CHUNK_SIZE = settings.SUBMAIL_CHUNK_SIZE = 10
    fake_submail.faults.slow, fake_submail.faults.slow_seconds = 1.0, 0.05  # every answer 50 ms late
    return fake_submail


@pytest.fixture
def loop_threads(monkeypatch):
    """The names of the threads that sent chunks."""
    names = []
    send_chunk = dispatch_module._send_chunk

    def recorded(*args):
        names.append(threading.current_thread().name)
        return send_chunk(*args)

    monkeypatch.setattr(dispatch_module, "_send_chunk", recorded)
    return names


def _pending(user, count):
    CommunicationLog.objects.bulk_create(
        CommunicationLog(tenant_id=user.tenant_id, user=user, channel="sms", provider="submail",
                         recipient=f"+86139{i:08d}", content="Parcel on its way", batch_id="bat_loops")
        for i in range(count)
    )  # fmt: skip


def test_loops_send_chunks_side_by_side_and_every_message_once(
    transactional_db, slow_gateway, loop_threads, settings
):
    settings.DISPATCH_THREADS = 4
    user = UserFactory(tenant=TenantFactory(slug="loops"))
    _pending(user, 200)
    try:
        report = dispatch_pending(batch_id="bat_loops")
    finally:
        connections.close_all()
    assert (report.sent, report.failed, report.retry) == (200, 0, 0)
    assert set(Counter(to for to, _ in slow_gateway.deliveries()).values()) == {1}
    # 20 chunks of 10, give or take: a loop claiming while another's claim is still locking
    # rows gets the rows left (SKIP LOCKED), so a chunk is sometimes short and one more goes out.
    assert len(slow_gateway.deliveries()) == 200 and 20 <= slow_gateway.calls("sms/multisend") <= 26
    assert len(set(loop_threads)) == 4 and "MainThread" not in loop_threads


def test_inside_a_transaction_one_loop_sends_what_other_connections_could_not_see(
    slow_gateway, loop_threads, alice, settings
):
    settings.DISPATCH_THREADS = 4
    with transaction.atomic():
        _pending(alice, 30)
        report = dispatch_pending(batch_id="bat_loops")
    assert report.sent == 30 and set(loop_threads) == {"MainThread"}
