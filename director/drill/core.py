"""The drill's pure core: timelines in, figures out. No sockets, no processes, no clocks.

A scenario run yields events (who held the VIP when, which process ran, which link was cut),
the client's requests and the long-lived connections' fates; `measure` turns them into the
figures the report shows and `breaches` checks them against the bounds a person gave.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

STALL = 1.5  # seconds without a byte at the end of a run: a long-lived connection counts as lost


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    pre: str  # "baseline" (lb1 master, lb2 backup) or "lb1_down" (lb2 master alone)
    expect: str  # the director expected to hold the VIP after the action


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("sigkill", "master SIGKILL", "baseline", "lb2"),
    Scenario("master_back_preempt", "master back (preempt)", "lb1_down", "lb1"),
    Scenario("graceful", "graceful stop", "baseline", "lb2"),
    Scenario("master_back_nopreempt", "master back (nopreempt)", "lb1_down", "lb2"),
    Scenario("linkcut", "link cut", "baseline", "lb2"),
)}


@dataclass(frozen=True)
class Event:
    """t: CLOCK_REALTIME seconds (the drill's one clock); kind: vip_add | vip_del (ip monitor in the
    director), garp | advert | resign (a gratuitous ARP for the VIP, an advert, a priority 0 advert,
    seen on the client's wire) | up | down | cut | uncut (the drill's own actions)."""

    t: float
    director: str
    kind: str


@dataclass(frozen=True)
class Request:
    t: float
    ok: bool
    server: str


@dataclass(frozen=True)
class Conn:
    opened: float
    last_byte: float
    closed: float | None = None
    reason: str = ""


@dataclass
class Run:
    """Everything observed in one scenario run for one director implementation."""

    scenario: str
    implementation: str
    start: float
    fault: float
    end: float
    events: list[Event] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    conns: list[Conn] = field(default_factory=list)
    error: str = ""
    round: int = 1  # which repetition of the scenario (the drill's --repeat)


@dataclass
class Figures:
    takeover: float | None  # seconds from the fault until the client sees the new holder's gratuitous ARP
    failed_requests: int
    requests: int
    lost_connections: int
    connections: int
    recovery: float | None  # seconds from the fault until every real server has served again
    holder: str  # who holds the VIP at the end ("" nobody, "lb1+lb2" both)
    error: str = ""
    lost_reasons: dict[str, int] = field(default_factory=dict)  # why the lost connections broke
    last_advert: float | None = None  # the old master's last advert before the takeover, from the fault
    resigned: bool = False  # that last advert had priority 0
    after_advert: float | None = None  # the old master's last advert to the takeover (the protocol's part)


def holders_at(events: Iterable[Event], t: float) -> set[str]:
    """Directors holding the VIP at time t and able to serve it (running, not cut off)."""
    held: set[str] = set()
    gone: set[str] = set()  # dead or cut off: a VIP left on such a director serves nobody
    for ev in sorted(events, key=lambda e: e.t):
        if ev.t > t:
            break
        if ev.kind == "vip_add":
            held.add(ev.director)
        elif ev.kind == "vip_del":
            held.discard(ev.director)
        elif ev.kind in ("down", "cut"):
            gone.add(ev.director)
        elif ev.kind in ("up", "uncut"):
            gone.discard(ev.director)
    return held - gone


def takeover_at(run: Run, expect: str) -> float | None:
    """When the client first saw the expected holder's gratuitous ARP for the VIP after the fault:
    the moment the client can reach the new master (its ARP entry moves)."""
    garps = [e.t for e in run.events if e.kind == "garp" and e.director == expect and e.t >= run.fault]
    return min(garps) if garps else None


def takeover_time(run: Run, expect: str, scenario: Scenario) -> float | None:
    """Fault to the expected holder's first gratuitous ARP. For a master coming back the clock
    starts at its first advert (its claim; its start-up and preempt_delay are not a takeover);
    none is expected without preempt."""
    if scenario.name == "master_back_nopreempt":
        return None
    start = run.fault
    if scenario.name == "master_back_preempt":
        claims = [e.t for e in run.events if e.kind in ("advert", "resign") and e.director == expect
                  and e.t >= run.fault]
        if not claims:
            return None
        start = min(claims)
    at = takeover_at(run, expect)
    return None if at is None else max(0.0, at - start)


def last_advert(run: Run, expect: str) -> Event | None:
    """The previous master's last advert before the takeover: the protocol's clock starts there."""
    at = takeover_at(run, expect)
    if at is None:
        return None
    before = [e for e in run.events if e.kind in ("advert", "resign") and e.director != expect and e.t <= at]
    return max(before, key=lambda e: e.t) if before else None


def lost(conn: Conn, end: float) -> bool:
    return conn.closed is not None or end - conn.last_byte > STALL


def recovery_time(run: Run, servers: Sequence[str]) -> float | None:
    """Fault to the moment the last of `servers` answered a request again."""
    firsts = []
    for server in servers:
        answered = [r.t for r in run.requests if r.ok and r.server == server and r.t >= run.fault]
        if not answered:
            return None
        firsts.append(min(answered))
    return max(firsts) - run.fault if firsts else None


def measure(run: Run, servers: Sequence[str]) -> Figures:
    scenario = SCENARIOS[run.scenario]
    held = holders_at(run.events, run.end)
    takeover = takeover_time(run, scenario.expect, scenario)
    last = last_advert(run, scenario.expect) if scenario.pre == "baseline" else None
    at = takeover_at(run, scenario.expect)
    return Figures(
        takeover=takeover,
        failed_requests=sum(1 for r in run.requests if not r.ok),
        requests=len(run.requests),
        lost_connections=sum(1 for c in run.conns if lost(c, run.end)),
        connections=len(run.conns),
        recovery=recovery_time(run, servers),
        holder="+".join(sorted(held)),
        error=run.error,
        lost_reasons=_reasons(run),
        last_advert=None if last is None else last.t - run.fault,
        resigned=last is not None and last.kind == "resign",
        after_advert=None if last is None or at is None else at - last.t,
    )


def _reasons(run: Run) -> dict[str, int]:
    out: dict[str, int] = {}
    for conn in run.conns:
        if lost(conn, run.end):
            reason = conn.reason or "stalled"
            out[reason] = out.get(reason, 0) + 1
    return out


@dataclass(frozen=True)
class Bounds:
    max_takeover: float | None = None
    max_failed_requests: int | None = None
    max_lost_connections: int | None = 0


def breaches(scenario: str, figures: Figures, bounds: Bounds) -> list[str]:
    """Every bound this outcome breaks, one line each (empty: it held)."""
    out = []
    if figures.error:
        out.append(f"did not run: {figures.error}")
        return out
    expect = SCENARIOS[scenario].expect
    if figures.holder != expect:
        out.append(f"VIP ends on {figures.holder or 'nobody'}, expected {expect}")
    if bounds.max_takeover is not None and scenario != "master_back_nopreempt":
        if figures.takeover is None:
            out.append("no takeover observed")
        elif figures.takeover > bounds.max_takeover:
            out.append(f"takeover {figures.takeover:.3f}s > {bounds.max_takeover:.3f}s")
    if bounds.max_failed_requests is not None and figures.failed_requests > bounds.max_failed_requests:
        out.append(f"{figures.failed_requests} failed requests > {bounds.max_failed_requests}")
    if bounds.max_lost_connections is not None and figures.lost_connections > bounds.max_lost_connections:
        out.append(f"{figures.lost_connections} long-lived connections lost > {bounds.max_lost_connections}")
    return out


def master_down_interval(advert: float, priority: int) -> float:
    """RFC 5798: 3 x advert interval + skew time of the backup."""
    return 3 * advert + (256 - priority) * advert / 256


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    state: str  # master | backup | down | cut


def director_segments(events: Sequence[Event], director: str, start: float, end: float,
                      initial: str = "backup") -> list[Segment]:
    """A director's state over [start, end] for the timeline: down beats cut beats master."""
    running = initial != "down"
    cut = False
    held = initial == "master"
    out: list[Segment] = []
    t = start

    def state() -> str:
        return "down" if not running else "cut" if cut else "master" if held else "backup"

    for ev in sorted((e for e in events if e.director == director), key=lambda e: e.t):
        before = state()
        if ev.kind == "vip_add":
            held = True
        elif ev.kind == "vip_del":
            held = False
        elif ev.kind in ("up", "down"):
            running = ev.kind == "up"
        elif ev.kind in ("cut", "uncut"):
            cut = ev.kind == "cut"
        at = min(max(ev.t, start), end)
        if state() != before and at > t:
            out.append(Segment(t, at, before))
            t = at
    if end > t:
        out.append(Segment(t, end, state()))
    return _merge(out)


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if out and out[-1].state == seg.state:
            out[-1] = Segment(out[-1].start, seg.end, seg.state)
        else:
            out.append(seg)
    return out
