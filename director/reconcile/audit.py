"""The rolling audit: a slice of the owned services re-read and compared each tick.

Tampering (an entry edited, added or deleted by hand) is what the mirror cannot see; a
full dump every tick would find it at a cost that grows with the table. Instead each
tick takes the next slice, sized so that every service comes up within `period`
whatever the table's size. Pure bookkeeping: which keys to read now, and the progress
status and /metrics show.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field

from director.ipvs.model import ServiceKey


@dataclass
class AuditProgress:
    rounds: int = 0  # complete passes over every service
    position: int = 0  # services audited in the current round
    services: int = 0  # services the current round covers
    audited_total: int = 0
    repairs_total: int = 0  # writes made because what the kernel held differed from the mirror
    errors_total: int = 0
    last_round_seconds: float | None = None
    last_repairs: list[str] = field(default_factory=list)
    last_errors: list[str] = field(default_factory=list)


class Audit:
    def __init__(self, period: float) -> None:
        self.period = period
        self.progress = AuditProgress()
        self._order: list[ServiceKey] = []
        self._known: frozenset[ServiceKey] = frozenset()
        self._round_began: float | None = None

    def restart(self, now: float) -> None:
        """A full pass just read everything: the next round starts from the beginning."""
        self.progress.position = 0
        self._round_began = now

    def next_slice(self, keys: Collection[ServiceKey], interval: float, now: float) -> list[ServiceKey]:
        """The services to audit this tick (one tick every `interval` seconds)."""
        if len(keys) != len(self._known) or not self._known.issuperset(keys):
            self._known = frozenset(keys)
            done = set(self._order[:self.progress.position])
            # keep the round: what is audited already stays first, new services join the end
            self._order = [k for k in self._order if k in self._known]
            kept = set(self._order)
            self._order += [k for k in keys if k not in kept]
            self.progress.position = sum(1 for k in self._order if k in done)
        total = len(self._order)
        self.progress.services = total
        if not total:
            return []
        if self._round_began is None:
            self._round_began = now
        size = max(1, math.ceil(total * interval / self.period)) if self.period > 0 else total
        start = self.progress.position
        picked = self._order[start:start + size]
        self.progress.position = start + len(picked)
        self.progress.audited_total += len(picked)
        if self.progress.position >= total:
            self.progress.rounds += 1
            self.progress.last_round_seconds = now - self._round_began
            self.progress.position = 0
            self._round_began = now
        return picked
