"""The outbox policy: a bounded queue with retries, as a plain object (no clock, no I/O).

Alerts come in bursts (a switch failing takes every real server down at once) and the mail
server may be slow or gone; neither may cost the daemon more than a bounded amount of memory.
So the queue holds at most `capacity` alerts and, when full, drops the OLDEST: the newest
alerts describe the state an operator has to act on now, and the next mail that leaves says
how many were dropped before it. A failed exchange is retried after a growing delay, a bounded
number of times; a permanent refusal (an SMTP 5xx) is not retried. One exchange runs at a time.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

CAPACITY = 100  # alerts waiting at most (a few MB of mail at worst)
RETRY_DELAYS = (5.0, 30.0, 120.0)  # seconds before the 2nd, 3rd and 4th attempt
DROP_REASONS = ("queue_full", "gave_up")


@dataclass
class Pending(Generic[T]):
    """One alert in the outbox: `item` is what the caller queued (the mail, once composed)."""

    item: T
    queued_at: float
    seq: int
    attempts: int = 0  # exchanges tried so far
    due: float = 0.0  # when it may be tried (next)
    last_error: str = ""


@dataclass
class OutboxCounters:
    sent: int = 0
    failed: collections.Counter[str] = field(default_factory=collections.Counter)  # failed attempts, by reason
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)  # by DROP_REASONS
    retried: int = 0


class Outbox(Generic[T]):
    """The loop side of the mailer asks `take` for the next alert due, runs the exchange and
    reports `sent` or `failed`; `put` queues one. Times are the caller's monotonic clock."""

    def __init__(self, capacity: int = CAPACITY, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.capacity = capacity
        self.retry_delays = retry_delays
        self.counters = OutboxCounters()
        self.in_flight: Pending[T] | None = None
        self.unreported_drops = 0  # dropped since the last alert that left the outbox
        self._queue: collections.deque[Pending[T]] = collections.deque()
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[Pending[T]]:
        return iter(self._queue)

    def put(self, item: T, now: float) -> Pending[T] | None:
        """Queue `item`, due at once; the oldest waiting alert if it had to make room."""
        dropped = None
        if len(self._queue) >= self.capacity:
            dropped = self._queue.popleft()
            self.counters.dropped["queue_full"] += 1
            self.unreported_drops += 1
        self._queue.append(Pending(item, now, next(self._seq), due=now))
        return dropped

    def take(self, now: float) -> Pending[T] | None:
        """The first alert due now, out of the queue and in flight; None if none is (or one is in flight)."""
        if self.in_flight is not None:
            return None
        for pending in self._queue:
            if pending.due <= now:
                self._queue.remove(pending)
                self.in_flight = pending
                pending.attempts += 1
                return pending
        return None

    def next_due(self) -> float | None:
        """When `take` next has something, if anything is queued (now or in the past: at once)."""
        return min((p.due for p in self._queue), default=None)

    def claim_drops(self) -> int:
        """Drops no mail has told of yet; the caller tells them in the mail it composes now."""
        count, self.unreported_drops = self.unreported_drops, 0
        return count

    def sent(self, pending: Pending[T]) -> None:
        self._land(pending)
        self.counters.sent += 1

    def failed(self, pending: Pending[T], reason: str, now: float, permanent: bool = False,
               reason_class: str = "other") -> float | None:
        """The exchange failed: the time of the retry, or None when the alert is given up
        (permanent, or its attempts spent). A retry goes back in its place in the queue."""
        self._land(pending)
        self.counters.failed[reason_class] += 1
        pending.last_error = reason
        if permanent or pending.attempts > len(self.retry_delays):
            self.counters.dropped["gave_up"] += 1
            return None
        pending.due = now + self.retry_delays[pending.attempts - 1]
        self.counters.retried += 1
        self._queue.append(pending)
        self._queue = collections.deque(sorted(self._queue, key=lambda p: p.seq))
        if len(self._queue) > self.capacity:  # room was taken while it was out
            self._queue.popleft()
            self.counters.dropped["queue_full"] += 1
            self.unreported_drops += 1
        return pending.due

    def _land(self, pending: Pending[T]) -> None:
        if self.in_flight is not pending:
            raise ValueError("not the alert in flight")
        self.in_flight = None

    def abandon(self) -> int:
        """Forget every queued alert (the daemon stops): how many."""
        count = len(self._queue) + (self.in_flight is not None)
        self._queue.clear()
        self.in_flight = None
        return count
