"""Database work on several connections at once (authms/side_by_side.py)."""

import threading
import time

import pytest
from django.db import connection

from authms.side_by_side import map_side_by_side

on_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'")


def _where(item):
    """The item, the thread that took it and its connection's backend."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    time.sleep(0.01)  # long enough for the other thread to take the next item
    return item, threading.current_thread().name


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_items_are_shared_out_over_threads_and_results_come_in_the_items_order():
    results = map_side_by_side(_where, list(range(8)), threads=2)
    assert [item for item, _ in results] == list(range(8))
    threads = {name for _, name in results}
    assert len(threads) == 2 and threading.current_thread().name not in threads


@pytest.mark.django_db
def test_inside_a_transaction_the_work_runs_here_one_item_after_another():
    """Other connections could not see the transaction's rows."""
    results = map_side_by_side(_where, list(range(4)), threads=2)
    assert results == [(item, threading.current_thread().name) for item in range(4)]


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_after_a_failure_no_more_items_are_taken_and_the_error_is_raised():
    taken = []

    def work(item):
        taken.append(item)
        if item == 0:
            raise ValueError("item 0 failed")
        time.sleep(0.05)
        return item

    with pytest.raises(ValueError, match="item 0 failed"):
        map_side_by_side(work, list(range(20)), threads=2)
    assert len(taken) <= 3  # item 0, and what the other thread had taken before it knew
