"""The chaos soak's invariants, judged on what it recorded (sans-IO: no clock, no processes).

Every instant is CLOCK_MONOTONIC seconds: the soak steps the wall clock on purpose.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Spans = list[tuple[float, float]]


@dataclass
class Fault:
    """One injected fault: what, on whom, and when it began and cleared."""

    kind: str
    target: str
    role: str  # the target's VRRP role when the fault began: master or backup
    start: float
    cleared: float = 0.0
    hard: bool = False  # a hard fault of the master: long-lived connections may be lost
    outcome: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Breach:
    invariant: str
    at: float
    figure: float  # how long (seconds) or how much (fraction) the invariant was broken
    detail: str


# --- spans ---------------------------------------------------------------------------------------


def spans_from_changes(changes: Iterable[tuple[float, bool]], end: float) -> Spans:
    """On/off changes, in time order, as the spans where the state was on, up to `end`."""
    spans: Spans = []
    since: float | None = None
    for at, on in changes:
        if on and since is None:
            since = at
        elif not on and since is not None:
            spans.append((since, at))
            since = None
    if since is not None:
        spans.append((since, end))
    return spans


def subtract(spans: Spans, holes: Spans) -> Spans:
    """The parts of `spans` outside every hole."""
    out: Spans = []
    for start, end in spans:
        pieces = [(start, end)]
        for hole_start, hole_end in holes:
            pieces = [part for a, b in pieces
                      for part in ((a, min(b, hole_start)), (max(a, hole_end), b)) if part[1] > part[0]]
        out.extend(pieces)
    return sorted(out)


def counted(spans_by_owner: Mapping[str, Spans], start: float, end: float) -> list[tuple[float, float, int]]:
    """[start, end] cut where any owner's span begins or ends, each piece with how many own it."""
    cuts = {start, end} | {t for spans in spans_by_owner.values() for span in spans for t in span if start < t < end}
    edges = sorted(cuts)
    pieces = []
    for a, b in itertools.pairwise(edges):
        mid = (a + b) / 2
        owners = sum(1 for spans in spans_by_owner.values() if any(s <= mid < e for s, e in spans))
        pieces.append((a, b, owners))
    return pieces


def stretches(pieces: list[tuple[float, float, int]], wanted: Any) -> Spans:
    """Maximal runs of adjacent pieces whose owner count satisfies `wanted`."""
    runs: Spans = []
    for a, b, owners in pieces:
        if not wanted(owners):
            continue
        if runs and runs[-1][1] == a:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs


# --- the invariants ------------------------------------------------------------------------------


def ownership_breaches(holds: Mapping[str, Spans], unfit: Mapping[str, Spans], start: float, end: float,
                       no_owner_limit: float, two_owner_limit: float) -> tuple[list[Breach], float, float]:
    """A director owns the VIP while it holds the address and is fit (running, not stopped, not cut
    off: the soak's faults make it unfit). Nobody may own it for longer than `no_owner_limit`
    (Master_Down_Interval + 50 ms), two may not for longer than `two_owner_limit` (one advert
    interval). The breaches and the longest stretch of each kind."""
    owned = {lb: subtract(spans, unfit.get(lb, [])) for lb, spans in holds.items()}
    pieces = counted(owned, start, end)
    breaches, worst = [], {0: 0.0, 2: 0.0}
    for kind, wanted, limit in ((0, lambda n: n == 0, no_owner_limit), (2, lambda n: n >= 2, two_owner_limit)):
        for a, b in stretches(pieces, wanted):
            worst[kind] = max(worst[kind], b - a)
            if b - a > limit:
                name = "no director owns the VIP" if kind == 0 else "two directors own the VIP"
                breaches.append(Breach("vip_owner", a, b - a, f"{name} for {(b - a) * 1000:.0f} ms"))
    return breaches, worst[0], worst[2]


def table_breaches(samples: Iterable[tuple[float, str, bool, str]], limit: float) -> tuple[list[Breach], float]:
    """Samples (time, director, matches, difference) of each running director's IPVS table against
    the one its config and the real servers' health call for: a mismatch may last `limit`
    (two reconcile passes). The breaches and the longest mismatch."""
    since: dict[str, tuple[float, str]] = {}
    last: dict[str, float] = {}
    breaches, worst = [], 0.0

    def close(lb: str) -> None:
        nonlocal worst
        if lb not in since:
            return
        began, difference = since.pop(lb)
        length = last[lb] - began
        worst = max(worst, length)
        if length > limit:
            breaches.append(Breach("ipvs_table", began, length, f"{lb}'s table differed for {length:.1f} s: "
                                                                f"{difference}"))

    for at, lb, matches, difference in samples:
        if matches:
            last[lb] = at
            close(lb)
        else:
            since.setdefault(lb, (at, difference))
            last[lb] = at
    for lb in list(since):
        close(lb)
    return breaches, worst


def connection_breaches(closed: Iterable[tuple[float, str]], faults: list[Fault], grace: float) -> list[Breach]:
    """A long-lived connection may end only during a hard fault of the master or within `grace`
    after it cleared (the failback it causes included)."""
    breaches = []
    for at, reason in closed:
        if not any(f.hard and f.start <= at <= f.cleared + grace for f in faults):
            during = fault_at(faults, at)
            context = f"after {during.kind}" if during else "with no fault"
            breaches.append(Breach("connection_lost", at, 1, f"a long-lived connection ended ({reason}) {context}"))
    return breaches


def growth(samples: Iterable[tuple[float, str, int, int]], warm: float, min_span: float) -> dict[str, dict[str, Any]]:
    """Samples (time, process key, fds, rss) of each process incarnation: growth of each from its
    first sample at least `warm` seconds into its life to its last, for incarnations watched over
    at least `min_span` seconds after that."""
    by_key: dict[str, list[tuple[float, int, int]]] = {}
    for at, key, fds, rss in samples:
        by_key.setdefault(key, []).append((at, fds, rss))
    out = {}
    for key, rows in by_key.items():
        born = rows[0][0]
        warmed = [row for row in rows if row[0] - born >= warm]
        if len(warmed) < 2 or warmed[-1][0] - warmed[0][0] < min_span:
            continue
        (t0, fds0, rss0), (t1, fds1, rss1) = warmed[0], warmed[-1]
        out[key] = {"span": t1 - t0, "fds": (fds0, fds1), "rss": (rss0, rss1),
                    "fd_growth": (fds1 - fds0) / max(fds0, 1), "rss_growth": (rss1 - rss0) / max(rss0, 1)}
    return out


def growth_breaches(grown: Mapping[str, Mapping[str, Any]], limit: float) -> list[Breach]:
    breaches = []
    for key, row in grown.items():
        for what in ("fd", "rss"):
            if row[f"{what}_growth"] > limit:
                breaches.append(Breach(f"{what}_growth", 0.0, row[f"{what}_growth"],
                                       f"{key}: {what} {row[what][0]} -> {row[what][1]} over {row['span']:.0f} s"))
    return breaches


def fault_at(faults: list[Fault], at: float) -> Fault | None:
    """The latest fault begun at or before `at`: what a breach is laid at the door of."""
    begun = [f for f in faults if f.start <= at]
    return begun[-1] if begun else None
