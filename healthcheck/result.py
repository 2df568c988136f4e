"""What a probe is pointed at and what it says back.

Plain values only, so the director, the scheduler and `directord probe` share them
without importing each other.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Target:
    """One address and port to probe. Hashable: it is part of the dedup key."""

    address: str
    port: int

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.address).version

    @property
    def host(self) -> str:
        """The address as it appears in a URL or a SIP URI (IPv6 in brackets)."""
        return f"[{self.address}]" if ":" in self.address else self.address

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


class ProbeResult(NamedTuple):
    """One sample. `reason` is for people: why it failed, or what passed.

    A NamedTuple, not a frozen dataclass: one is built per check, thousands a
    second, and frozen dataclasses construct several times slower.
    """

    ok: bool
    latency: float
    reason: str
    # Dynamic weight reported by the check (exec with dynamic_weight); None: keep the
    # configured weight.
    weight: int | None = None


def format_ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    """Render status ranges the way a person writes them: `[200, 300-399]`."""
    parts = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges]
    return "[" + ", ".join(parts) + "]"


def status_in(status: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= status <= hi for lo, hi in ranges)
