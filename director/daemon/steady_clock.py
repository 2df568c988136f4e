"""The clock drains and slow start count with: epoch seconds that never step.

`time.time()` jumps when NTP or an admin sets the clock: one step forward ended every
drain at once and skipped slow start. This clock is CLOCK_BOOTTIME plus an offset
fixed at the first start in a boot and kept in the state file, so it runs at a steady
rate, agrees across daemon restarts and `apply` runs in the same boot, and reads as
wall time (a drain's `since` stays meaningful after a reboot).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True)
class ClockAnchor:
    boot_id: str
    offset: float  # epoch seconds at CLOCK_BOOTTIME zero, as the wall clock said at the anchoring


def boot_id() -> str:
    try:
        with open(BOOT_ID_FILE, encoding="ascii") as handle:
            return handle.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return ""  # never matches a saved anchor: anchor afresh


def current_anchor(saved: ClockAnchor | None) -> ClockAnchor:
    """`saved` while it is from this boot, else a new anchor from the wall clock now."""
    this_boot = boot_id()
    if saved is not None and this_boot and saved.boot_id == this_boot:
        return saved
    return ClockAnchor(this_boot, time.time() - time.clock_gettime(time.CLOCK_BOOTTIME))


class SteadyClock:
    def __init__(self, anchor: ClockAnchor) -> None:
        self.anchor = anchor

    def now(self) -> float:
        return self.anchor.offset + time.clock_gettime(time.CLOCK_BOOTTIME)
