"""The drill's pure core: figures and verdicts from synthetic timelines."""

from __future__ import annotations

import pytest

from director.drill.core import (
    Bounds,
    Conn,
    Event,
    Request,
    Run,
    breaches,
    director_segments,
    holders_at,
    master_down_interval,
    measure,
)

SERVERS = ["rs1", "rs2", "rs3"]


def requests(until: float, failing: tuple[float, float] = (0, 0), step: float = 0.1) -> list[Request]:
    out = []
    for i in range(int(until / step)):
        t = round(i * step, 3)
        out.append(Request(t, not (failing[0] <= t < failing[1]), SERVERS[i % 3]))
    return out


def sigkill_run(takeover_at: float = 2.9, conns: list[Conn] | None = None) -> Run:
    adverts = [Event(t / 4, "lb1", "advert") for t in range(8)]  # every 250 ms until 1.75 s
    events = [Event(0, "lb1", "up"), Event(0, "lb1", "vip_add"), Event(0, "lb2", "up"), *adverts,
              Event(2.0, "lb1", "down"), Event(takeover_at - 0.01, "lb2", "vip_add"),
              Event(takeover_at, "lb2", "garp"), Event(takeover_at + 0.1, "lb2", "garp")]
    return Run("sigkill", "directord", 0.0, 2.0, 8.0, events, requests(8.0, (2.0, takeover_at)),
               conns if conns is not None else [Conn(0.0, 7.95)])


def test_sigkill_figures() -> None:
    fig = measure(sigkill_run(), SERVERS)
    assert fig.takeover == pytest.approx(0.9)  # the first gratuitous ARP, not the address add before it
    assert fig.last_advert == pytest.approx(-0.25) and not fig.resigned
    assert fig.after_advert == pytest.approx(1.15)  # what Master_Down_Interval bounds
    assert fig.failed_requests == 9
    assert fig.requests == 80
    assert fig.lost_connections == 0
    assert fig.recovery == pytest.approx(1.1)  # 2.9, 3.0 and 3.1 are the first answers of the three servers
    assert fig.holder == "lb2"  # the VIP a dead lb1 still carries serves nobody


def test_lost_connections_closed_or_stalled() -> None:
    conns = [Conn(0, 7.9), Conn(0, 2.5, 2.6, "ConnectionResetError"), Conn(0, 5.0)]
    assert measure(sigkill_run(conns=conns), SERVERS).lost_connections == 2


def test_no_takeover_and_no_recovery() -> None:
    run = Run("sigkill", "directord", 0, 2, 8, [Event(0, "lb1", "vip_add"), Event(2, "lb1", "down")],
              requests(8, (2, 8)), [])
    fig = measure(run, SERVERS)
    assert fig.takeover is None and fig.recovery is None and fig.holder == ""
    assert "no takeover observed" in breaches("sigkill", fig, Bounds(max_takeover=1.0))
    assert "VIP ends on nobody, expected lb2" in breaches("sigkill", fig, Bounds())


def test_graceful_stop_counts_the_priority_zero_advert() -> None:
    events = [Event(0, "lb1", "vip_add"), Event(1.75, "lb1", "advert"), Event(2.3, "lb1", "resign"),
              Event(2.3, "lb1", "vip_del"), Event(2.45, "lb2", "vip_add"), Event(2.46, "lb2", "garp")]
    fig = measure(Run("graceful", "directord", 0, 2, 8, events, requests(8), []), SERVERS)
    assert fig.takeover == pytest.approx(0.46)
    assert fig.last_advert == pytest.approx(0.3) and fig.resigned
    assert fig.after_advert == pytest.approx(0.16)


def test_takeover_needs_the_new_masters_garp() -> None:
    events = [Event(0, "lb1", "vip_add"), Event(2.5, "lb2", "vip_add"), Event(2.6, "lb1", "garp")]
    assert measure(Run("sigkill", "k", 0, 2, 8, events, requests(8), []), SERVERS).takeover is None


def test_preempt_takeover_counts_from_the_handover() -> None:
    events = [Event(0, "lb2", "up"), Event(0, "lb2", "vip_add"), Event(2, "lb1", "up"),
              Event(29.99, "lb1", "advert"), Event(30.0, "lb2", "vip_del"), Event(30.01, "lb1", "vip_add"),
              Event(30.02, "lb1", "garp")]
    run = Run("master_back_preempt", "directord", 0, 2, 34, events, requests(34), [Conn(0, 33.9)])
    fig = measure(run, SERVERS)
    assert fig.takeover == pytest.approx(0.03)  # its first advert (the claim) to its first GARP
    assert fig.holder == "lb1"
    assert breaches("master_back_preempt", fig, Bounds(0.05, 0, 0)) == []


def test_nopreempt_expects_no_move() -> None:
    events = [Event(0, "lb2", "up"), Event(0, "lb2", "vip_add"), Event(2, "lb1", "up")]
    fig = measure(Run("master_back_nopreempt", "k", 0, 2, 20, events, requests(20), []), SERVERS)
    assert fig.takeover is None and fig.holder == "lb2"
    assert breaches("master_back_nopreempt", fig, Bounds(0.5, 0, 0)) == []


def test_bounds() -> None:
    fig = measure(sigkill_run(), SERVERS)
    assert breaches("sigkill", fig, Bounds(1.0, 9, 0)) == []
    assert breaches("sigkill", fig, Bounds(0.5, 3, 0)) == ["takeover 0.900s > 0.500s", "9 failed requests > 3"]
    assert breaches("sigkill", measure(sigkill_run(conns=[Conn(0, 1, 1, "x")]), SERVERS), Bounds()) == [
        "1 long-lived connections lost > 0"]


def test_linkcut_holder_ignores_the_isolated_director() -> None:
    events = [Event(0, "lb1", "vip_add"), Event(2, "lb1", "cut"), Event(3, "lb2", "vip_add")]
    assert holders_at(events, 4) == {"lb2"}
    assert holders_at([*events, Event(5, "lb1", "uncut")], 6) == {"lb1", "lb2"}


def test_segments() -> None:
    segs = director_segments(sigkill_run().events, "lb1", 0, 8, initial="down")
    assert [(s.start, s.end, s.state) for s in segs] == [(0, 2.0, "master"), (2.0, 8, "down")]
    segs = director_segments(sigkill_run().events, "lb2", 0, 8, initial="down")
    assert [(s.start, s.end, s.state) for s in segs] == [(0, 2.89, "backup"), (2.89, 8, "master")]


def test_master_down_interval() -> None:
    assert master_down_interval(0.25, 100) == pytest.approx(0.75 + 156 * 0.25 / 256)
