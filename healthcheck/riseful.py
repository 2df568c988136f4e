"""Rise/fall: turns samples into up/down transitions. Pure; no I/O, no clock.

A target changes state only after `rise` consecutive successes (down -> up) or
`fall` consecutive failures (up -> down). A sample against the current state starts
a run; a sample agreeing with it ends the run. While a run is open the target is
"rising" or "falling", and the scheduler may probe it faster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RiseFall:
    rise: int
    fall: int
    up: bool = False
    # Consecutive samples that disagree with the current state.
    run: int = 0

    def __post_init__(self) -> None:
        if self.rise < 1 or self.fall < 1:
            raise ValueError("rise and fall must be at least 1")

    def feed(self, ok: bool) -> bool | None:
        """Take one sample; return the new state if it changed, else None."""
        if ok == self.up:
            self.run = 0
            return None
        self.run += 1
        if self.run >= (self.rise if ok else self.fall):
            self.up = ok
            self.run = 0
            return ok
        return None

    @property
    def transitioning(self) -> bool:
        return self.run > 0

    @property
    def state(self) -> str:
        """`up`, `down`, `rising` or `falling`, for status output."""
        if self.run:
            return "falling" if self.up else "rising"
        return "up" if self.up else "down"
