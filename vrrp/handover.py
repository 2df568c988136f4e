"""A graceful stop that makes before it breaks, sans-IO.

RFC 5798 has a stopping master send priority 0 and drop its VIPs at once. Its
backup takes over one Skew_Time later, and in between nobody answers for the
VIPs: new connections sent then are lost. So every master sends priority 0 at
once but keeps its VIPs until its backup claims them with its first advert as
master (which comes after Skew_Time, less than one advert interval), or until one
advert interval and a margin have passed. Both routers hold the VIPs only while
that advert is on its way; connection sync carries what either accepted.

Events in: `resign` (every instance's shutdown actions), `advert` (a valid advert
reached a stopping instance), `deadline_reached`. Out: the actions due now, and
`Release`s of held actions. Instances are named by opaque keys.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from vrrp.fsm import SHUTDOWN_PRIORITY, Action, RemoveVips, SendAdvert

K = TypeVar("K", bound=Hashable)

MARGIN = 0.15  # seconds a stopping master waits past one advert interval for its backup's claim


@dataclass(frozen=True)
class Release(Generic[K]):
    """Let go of one instance's VIPs now: carry out what was held back for it (the
    VIP removal and the transition that follows it)."""

    key: K
    reason: str
    actions: tuple[Action, ...]


class Handover(Generic[K]):
    """The hand-over of every instance of one runtime; it happens once."""

    def __init__(self, margin: float = MARGIN) -> None:
        self.margin = margin
        self.resigned = False
        self.deadline: float | None = None  # when every held VIP goes regardless
        self._held: dict[K, tuple[Action, ...]] = {}

    @property
    def holding(self) -> list[K]:
        """The instances still holding their VIPs for a claim."""
        return list(self._held)

    def resign(self, now: float, shutdowns: Iterable[tuple[K, float, Sequence[Action]]]) -> list[tuple[K, Action]]:
        """Each instance's shutdown actions with its advert interval in seconds.

        Returns what is due now, in order: every priority 0, and all of the actions of
        instances that hold no VIPs. A master's VIP removal and what follows it wait.
        A second call returns nothing.
        """
        if self.resigned:
            return []
        self.resigned = True
        due: list[tuple[K, Action]] = []
        waits: list[float] = []
        for key, interval, actions in shutdowns:
            if not any(isinstance(a, RemoveVips) for a in actions):
                due += [(key, a) for a in actions]
                continue
            due += [(key, a) for a in actions if isinstance(a, SendAdvert)]
            self._held[key] = tuple(a for a in actions if not isinstance(a, SendAdvert))
            waits.append(interval)
        if waits:
            self.deadline = now + max(waits) + self.margin
        return due

    def advert(self, key: K, priority: int, src: object, now: float) -> list[Release[K]]:
        """A valid advert from `src` reached instance `key`. From a stopping master's
        backup it is the claim: that instance's VIPs go. Priority 0 is another router
        resigning, not a claim."""
        if priority == SHUTDOWN_PRIORITY or key not in self._held:
            return []
        return [self._release(key, f"claimed by {src}")]

    def deadline_reached(self, now: float) -> list[Release[K]]:
        """Nobody claimed in time (or the runtime waits no longer): every VIP goes."""
        return [self._release(key, "no claim in time") for key in list(self._held)]

    def _release(self, key: K, reason: str) -> Release[K]:
        actions = self._held.pop(key)
        if not self._held:
            self.deadline = None
        return Release(key, reason, actions)
