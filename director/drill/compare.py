"""Rounds of one scenario summed up, and where one implementation trails another.

One sample of a failover says little: the fault's phase against the adverts and the load's
phase against the fault move its figures by tens of milliseconds. A drill repeats each scenario
(the implementations take turns round by round, so they share the machine's weather) and
compares medians; failures and lost connections are compared as totals over the rounds.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from director.drill.core import Figures


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    samples: int


def spread(values: Sequence[float | None]) -> Spread | None:
    """Median and range of the values present; None when no round produced the figure."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return Spread(statistics.median(present), min(present), max(present), len(present))


@dataclass(frozen=True)
class Summary:
    rounds: int  # rounds that ran (errors excluded)
    errors: tuple[str, ...]
    takeover: Spread | None
    last_advert: Spread | None
    resigned: int  # rounds whose old master's last advert had priority 0
    after_advert: Spread | None
    failed: int  # failed requests, all rounds together
    requests: int
    lost: int  # long-lived connections lost, all rounds together
    connections: int
    lost_reasons: tuple[tuple[str, int], ...]  # why they broke, all rounds together
    recovery: Spread | None
    holders: tuple[tuple[str, int], ...]  # who held the VIP at the end, most frequent first


def summarize(rounds: Sequence[Figures]) -> Summary:
    ran = [f for f in rounds if not f.error]
    return Summary(
        rounds=len(ran),
        errors=tuple(f.error for f in rounds if f.error),
        takeover=spread([f.takeover for f in ran]),
        last_advert=spread([f.last_advert for f in ran]),
        resigned=sum(1 for f in ran if f.resigned),
        after_advert=spread([f.after_advert for f in ran]),
        failed=sum(f.failed_requests for f in ran),
        requests=sum(f.requests for f in ran),
        lost=sum(f.lost_connections for f in ran),
        connections=sum(f.connections for f in ran),
        lost_reasons=tuple(sorted(sum((Counter(f.lost_reasons) for f in ran), Counter()).items())),
        recovery=spread([f.recovery for f in ran]),
        holders=tuple(Counter(f.holder or "nobody" for f in ran).most_common()),
    )


TIMED = (("takeover", "VIP takeover"), ("after_advert", "last advert to takeover"),
         ("recovery", "all servers serve"))


def trailing(ours: Summary, reference: Summary, recovery_step: float = 0.0) -> list[str]:
    """Every figure on which `ours` is worse than `reference`, one line each: a larger median
    time, more failed requests or more lost connections over the same number of rounds.

    "All servers serve" is read off the client's requests: it moves by a request interval per
    server with the load's phase, so it trails only by more than `recovery_step` (servers /
    request rate). The other times are packet stamps, compared in the whole milliseconds the
    report prints: a line saying 914 ms trails 914 ms would help nobody."""
    if not ours.rounds or not reference.rounds:
        return []
    out = []
    for key, label in TIMED:
        mine, theirs = getattr(ours, key), getattr(reference, key)
        if mine is not None and theirs is not None and _worse(mine.median, theirs.median, key, recovery_step):
            out.append(f"{label}: median {mine.median * 1000:.0f} ms against {theirs.median * 1000:.0f} ms")
        elif mine is None and theirs is not None:
            out.append(f"{label}: never observed, the reference's median is {theirs.median * 1000:.0f} ms")
    for count, total, label in (("failed", "requests", "failed requests"), ("lost", "connections", "long-lived lost")):
        mine_n, theirs_n = getattr(ours, count), getattr(reference, count)
        if mine_n * reference.rounds > theirs_n * ours.rounds:
            out.append(f"{label}: {mine_n}/{getattr(ours, total)} against {theirs_n}/{getattr(reference, total)}")
    return out


def _worse(mine: float, theirs: float, key: str, recovery_step: float) -> bool:
    if key == "recovery":
        return mine > theirs + recovery_step
    return round(mine * 1000) > round(theirs * 1000)
