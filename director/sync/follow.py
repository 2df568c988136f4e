"""Which kernel connection-sync threads should run, as VRRP roles change over time.

The backup thread runs all the time, so a director learns every connection the
master makes whatever its role. The master thread runs while any instance is
master and for `HANDOVER_GRACE` seconds after the last one left master: the
kernel sends its sync buffer when it is full or every two seconds, and stopping
the master thread throws away what is still unsent, i.e. exactly the newest
connections, the ones a takeover must not break. A daemon that starts up
grants the same grace to a master thread a previous run may have left.
"""

from __future__ import annotations

from dataclasses import dataclass

HANDOVER_GRACE = 3.0  # seconds: the kernel's 2 s sync flush, and a margin


@dataclass
class SyncFollower:
    master: bool = False
    master_until: float | None = None  # the master thread may stop from this instant

    @classmethod
    def starting(cls, now: float, grace: float = HANDOVER_GRACE) -> SyncFollower:
        return cls(master=False, master_until=now + grace)

    def set_master(self, master: bool, now: float, grace: float = HANDOVER_GRACE) -> None:
        if self.master and not master:
            self.master_until = now + grace
        elif master:
            self.master_until = None
        self.master = master

    def plan(self, running: set[str], now: float) -> tuple[list[str], list[str]]:
        """(thread states to start, to stop) given those running ("master", "backup").
        A master thread in its grace is kept, never started."""
        need = {"backup", "master"} if self.master else {"backup"}
        keep = need | ({"master"} if self.master_until is not None and now < self.master_until else set())
        return sorted(need - running), sorted(running - keep)

    def next_change(self, now: float) -> float | None:
        """When the plan changes by itself (the grace ends), if it will."""
        if not self.master and self.master_until is not None and now < self.master_until:
            return self.master_until
        return None
