"""Stop signals for a VRRP process, taken by a thread rather than the event loop.

A graceful stop's priority-0 adverts are due at once: the backup takes over one
Skew_Time after it hears one. The event loop's own signal path (the C handler, the
wakeup socket, the loop's ready queue) is slow where CPU is scarce: in the emulated
test VM it took 8 ms (median) from kill() to Python code, against 1 ms for a C
program and for a thread blocked in sigwait(). So SIGTERM and SIGINT are blocked
in every thread, one thread waits for them, runs `at_once` there (sending adverts
encoded in advance), then hands the signal to the loop.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger("vrrp")
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def take_stop_signals(loop: asyncio.AbstractEventLoop, on_stop: Callable[[signal.Signals], None],
                      at_once: Callable[[], None]) -> None:
    """From now on a stop signal runs `at_once` (first signal only, in a thread of its
    own) and then `on_stop(sig)` on `loop`. Call from the main thread before any other
    thread starts: threads inherit the blocked mask, and one that did not would take
    the signal itself. Child processes get a clear mask from libuv's spawn."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    waiter = threading.Thread(target=_wait, args=(loop, on_stop, at_once), name="stop-signals", daemon=True)
    waiter.start()


def _wait(loop: asyncio.AbstractEventLoop, on_stop: Callable[[signal.Signals], None],
          at_once: Callable[[], None] | None) -> None:
    while True:
        sig = signal.Signals(signal.sigwait(STOP_SIGNALS))
        if at_once is not None:
            try:
                at_once()
            except Exception as exc:  # the loop's graceful stop still runs
                log.error("stop signal: sending at once failed", error=str(exc))
            at_once = None
        try:
            loop.call_soon_threadsafe(on_stop, sig)
        except RuntimeError:  # the loop has closed: the process is on its way out
            return
