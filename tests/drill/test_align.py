"""Faults aligned on the master's adverts: the drill waits for the next advert reported by the
wire reader (another thread) and returns the chosen phase after its stamp."""

from __future__ import annotations

import threading
import time

from director.drill.core import Event
from director.drill.runner import EventLog, align


def advert_later(log: EventLog, delay: float, stamp_offset: float = 0.0, director: str = "lb1") -> None:
    """An advert reported `delay` from now, stamped `stamp_offset` before its report (reader lag)."""
    def report() -> None:
        time.sleep(delay)
        log.add(Event(time.time() - stamp_offset, director, "advert"))
    threading.Thread(target=report, daemon=True).start()


def test_fault_lands_the_phase_after_the_next_advert() -> None:
    log = EventLog()
    log.add(Event(time.time() - 0.01, "lb1", "advert"))  # seen before the call: not the one
    advert_later(log, 0.05, director="lb2")  # another director's advert: ignored
    advert_later(log, 0.1)
    seen = align(log, "lb1", 0.05)
    now = time.time()
    assert seen is not None and now - seen >= 0.05 and now - seen < 0.05 + 0.03


def test_a_report_later_than_the_phase_waits_for_the_next_advert() -> None:
    log = EventLog()
    advert_later(log, 0.05, stamp_offset=0.08)  # reported 80 ms after it was stamped: too late for 50 ms
    advert_later(log, 0.2)
    seen = align(log, "lb1", 0.05)
    assert seen is not None and time.time() - seen >= 0.05
    assert [e.t for e in log.events].index(seen) == 1


def test_no_alignment_asked() -> None:
    started = time.time()
    assert align(EventLog(), "lb1", None) is None and time.time() - started < 0.01
