"""One fetch shared by every caller that asks while it runs, and reused for a period.

A scrape storm must cost what one scrape costs: concurrent /metrics requests share one
render, and the VRRP child (a real-time process whose time belongs to adverts) is asked
for its counters at most once per period, however many scrapes ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    """`get()` awaits `fetch()`: at most one fetch in flight, at most one started per
    `period` seconds (0: a fresh one for each caller that comes after the last finished).
    A failed fetch is not kept: the next caller starts another."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], period: float = 0.0) -> None:
        self.fetch = fetch
        self.period = period
        self.fetches = 0  # how many fetches were started (tests, benchmarks)
        self._task: asyncio.Future[T] | None = None
        self._started = float("-inf")

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        task = self._task
        expired = loop.time() - self._started >= self.period
        if task is None or (task.done() and (expired or task.cancelled() or task.exception() is not None)):
            self.fetches += 1
            self._started = loop.time()
            task = self._task = asyncio.ensure_future(self.fetch())
            if self.period <= 0:  # kept for nobody: its waiters hold the result, so let it go
                task.add_done_callback(self._forget)
        # shielded: a caller that goes away (its client hung up) does not cancel the others' fetch
        return await asyncio.shield(task)

    def _forget(self, task: asyncio.Future[T]) -> None:
        if self._task is task:
            self._task = None
