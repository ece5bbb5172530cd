"""Database work spread over several connections at once.

A thread gets its own database connection in Django, so work run in threads writes through
connections side by side: while one waits for PostgreSQL, another's statement runs on
another core. Only on PostgreSQL (SQLite has one writer at a time) and only outside a
transaction, whose rows the other connections could not see.
"""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection

Item = TypeVar("Item")
Result = TypeVar("Result")


def can_work_side_by_side() -> bool:
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def in_own_connection(work: Callable[[], Result]) -> Result:
    """Run `work` in a worker thread, closing the thread's database connection after it."""
    try:
        return work()
    finally:
        connection.close()


def map_side_by_side(work: Callable[[Item], Result], items: Sequence[Item], *, threads: int) -> list[Result]:
    """`work(item)` for every item, results in the items' order: on up to `threads`
    connections at once where that can be done, else one after another here.

    Each thread takes the next item until none are left, on one connection for all of its
    items (a new connection's first statements are slow). After a failure the threads take
    no more items, and the error is raised (the first thread's, in start order, if several
    failed). The items must not touch the same rows, or the connections would wait for each
    other's locks."""
    threads = min(threads, len(items))
    if threads <= 1 or not can_work_side_by_side():
        return [work(item) for item in items]
    results: list = [None] * len(items)
    next_index, taking, failed = iter(range(len(items))), threading.Lock(), threading.Event()

    def take_until_done() -> None:
        while not failed.is_set():
            with taking:
                index = next(next_index, None)
            if index is None:
                return
            try:
                results[index] = work(items[index])
            except BaseException:
                failed.set()
                raise

    with ThreadPoolExecutor(threads, thread_name_prefix="side-by-side") as pool:
        futures = [pool.submit(in_own_connection, take_until_done) for _ in range(threads)]
    for future in futures:
        future.result()
    return results
