"""The outbox policy, sans-IO: bounded, drops the oldest (counted, told in the next mail),
retries with growing delays a bounded number of times, never retries a permanent refusal,
and runs one exchange at a time."""

from __future__ import annotations

import pytest

from director.mail.outbox import CAPACITY, RETRY_DELAYS, Outbox


def test_it_is_bounded_and_drops_the_oldest_counting_each() -> None:
    box: Outbox[str] = Outbox(capacity=3)
    assert [box.put(name, 0.0) for name in "abc"] == [None, None, None]
    dropped = box.put("d", 1.0)
    assert dropped is not None and dropped.item == "a"
    assert [p.item for p in box] == ["b", "c", "d"] and len(box) == 3
    assert box.counters.dropped["queue_full"] == 1
    assert box.claim_drops() == 1 and box.claim_drops() == 0  # told once, in the next mail composed


def test_one_exchange_at_a_time_and_the_one_in_flight_is_never_dropped() -> None:
    box: Outbox[str] = Outbox(capacity=1)
    box.put("a", 0.0)
    sending = box.take(0.0)
    assert sending is not None and sending.item == "a" and sending.attempts == 1
    box.put("b", 0.0)
    assert box.take(0.0) is None  # "a" is still out
    box.put("c", 0.0)  # full: "b" goes, not "a"
    assert [p.item for p in box] == ["c"] and box.in_flight is sending
    box.sent(sending)
    assert box.counters.sent == 1 and box.take(0.0).item == "c"


def test_a_failure_is_retried_after_growing_delays_then_given_up() -> None:
    box: Outbox[str] = Outbox()
    box.put("a", 0.0)
    now, retries = 0.0, []
    while (pending := box.take(now)) is not None:
        retry = box.failed(pending, "connection refused", now, reason_class="refused")
        if retry is None:
            break
        assert box.take(retry - 0.001) is None  # not before its time
        retries.append(retry - now)
        now = retry
    assert retries == list(RETRY_DELAYS) and pending.attempts == len(RETRY_DELAYS) + 1
    assert box.counters.failed["refused"] == len(RETRY_DELAYS) + 1 and box.counters.retried == len(RETRY_DELAYS)
    assert box.counters.dropped["gave_up"] == 1 and len(box) == 0 and box.next_due() is None


def test_a_permanent_refusal_is_not_retried_and_others_go_while_one_waits() -> None:
    box: Outbox[str] = Outbox()
    box.put("rejected", 0.0)
    box.put("later", 0.0)
    first = box.take(0.0)
    assert box.failed(first, "550 no such user", 0.0, permanent=True, reason_class="rejected") is None
    assert box.counters.dropped["gave_up"] == 1
    second = box.take(0.0)
    retry = box.failed(second, "timed out", 0.0, reason_class="timeout")
    box.put("new", 1.0)
    assert box.take(1.0).item == "new"  # the retry waits; a new alert does not wait behind it
    assert box.next_due() == retry


def test_a_retry_keeps_its_place_and_abandon_forgets_everything() -> None:
    box: Outbox[str] = Outbox()
    for name in "ab":
        box.put(name, 0.0)
    first = box.take(0.0)
    box.failed(first, "timed out", 0.0)
    assert [p.item for p in box] == ["a", "b"]  # in the order the alerts happened
    box.take(0.0)
    assert box.abandon() == 2 and len(box) == 0 and box.in_flight is None


def test_only_the_alert_in_flight_can_land() -> None:
    box: Outbox[str] = Outbox()
    box.put("a", 0.0)
    queued = next(iter(box))
    with pytest.raises(ValueError, match="not the alert in flight"):
        box.sent(queued)
    assert CAPACITY == 100
