"""The scheduler with a scripted probe (timing, sharing, reload) and with real probes."""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics

from director.config.model import CheckConfig
from healthcheck.result import ProbeResult, Target
from healthcheck.scheduler import Scheduler
from tests.healthcheck import adversaries as adv
from tests.healthcheck.conftest import run

A = Target("127.0.0.1", 1001)
B = Target("127.0.0.1", 1002)


class Scripted:
    """A probe whose verdict per target the test sets; it records call times."""

    def __init__(self, default: bool = True):
        self.ok: dict[Target, bool] = {}
        self.default = default
        self.calls: list[tuple[float, Target]] = []

    async def __call__(self, target: Target, check: CheckConfig) -> ProbeResult:
        self.calls.append((asyncio.get_running_loop().time(), target))
        ok = self.ok.get(target, self.default)
        return ProbeResult(ok, 0.001, "fine" if ok else "scripted failure")

    def count(self, target: Target) -> int:
        return sum(1 for _, t in self.calls if t == target)


async def until(cond, timeout: float = 3.0) -> None:
    """Poll: timing on a loaded CI box varies, so tests wait for states, not for sleeps."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def fast(**kw) -> CheckConfig:
    base = dict(type="tcp", interval=0.05, timeout=0.05, rise=2, fall=2, jitter=0.0)
    base.update(kw)
    return CheckConfig(**base)


def test_rise_then_fall_reported_to_subscriber():
    async def go():
        events = []
        probe = Scripted()
        s = Scheduler(lambda k, up, r: events.append((k, up, r.reason)), probe=probe)
        status = s.add("web", A, fast())
        assert status.state == "down" and not status.up  # initial = down (warm-up)
        await until(lambda: events)
        assert events == [("web", True, "fine")]
        assert s.snapshot("web").checks == 2  # exactly `rise` samples
        probe.ok[A] = False
        await until(lambda: len(events) == 2)
        await s.close()
        return events, s

    events, _ = run(go())
    assert events == [("web", True, "fine"), ("web", False, "scripted failure")]


def test_initial_up_needs_no_warm_up():
    async def go():
        events = []
        s = Scheduler(lambda k, up, r: events.append(up), probe=Scripted())
        assert s.add("k", A, fast(initial="up")).up
        await until(lambda: s.snapshot("k").checks >= 3)
        await s.close()
        return events

    assert run(go()) == []


def test_identical_checks_share_one_probe():
    async def go():
        events = []
        probe = Scripted()
        s = Scheduler(lambda k, up, r: events.append((k, up)), probe=probe)
        s.add(("vs1", "a"), A, fast())
        s.add(("vs2", "a"), A, fast())
        s.add(("vs3", "a"), A, fast(path="/other"))  # a different check: its own probe
        assert len(s) == 2 and s.subscribers == 3
        await until(lambda: len(events) == 3)
        await s.close()
        return events, probe, s.snapshots(), len(probe.calls)

    events, probe, snaps, calls = run(go())
    assert sorted(events) == [(("vs1", "a"), True), (("vs2", "a"), True), (("vs3", "a"), True)]
    assert snaps == {}  # closed
    # every call is accounted for by the two probes: vs1 and vs2 share one
    assert calls == probe.count(A) and calls >= 4


def test_shared_snapshot():
    async def go():
        s = Scheduler(probe=Scripted())
        s.add(("vs1", "a"), A, fast())
        s.add(("vs2", "a"), A, fast())
        await until(lambda: s.snapshot(("vs1", "a")).up)
        snaps = s.snapshots()
        await s.close()
        return snaps

    snaps = run(go())
    assert snaps[("vs1", "a")] is snaps[("vs2", "a")]
    assert snaps[("vs1", "a")].shared_by == 2


def test_first_probes_are_spread_by_jitter():
    async def go():
        probe = Scripted()
        s = Scheduler(probe=probe, rng=random.Random(7))
        start = asyncio.get_running_loop().time()
        for i in range(200):
            s.add(i, Target("127.0.0.1", 2000 + i), fast(interval=1.0, jitter=0.5))
        await until(lambda: len(probe.calls) >= 200)
        await asyncio.sleep(0.05)
        await s.close()
        return [t - start for t, _ in probe.calls]

    times = run(go())
    assert len(times) == 200  # each fired once within the spread (interval is 1 s)
    assert max(times) <= 0.7 and min(times) >= 0
    assert statistics.pstdev(times) > 0.1  # roughly uniform over 0.5 s (0.144)


def test_steady_interval_keeps_phase():
    async def go():
        probe = Scripted()
        s = Scheduler(probe=probe)
        s.add("k", A, fast(interval=0.1))
        await asyncio.sleep(0.55)
        await s.close()
        return [t for t, _ in probe.calls]

    times = run(go())
    assert len(times) >= 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Fixed rate: probe i is due at phase + i * interval. A late wake-up (a loaded machine) delays
    # one probe without moving the later ones, so the gap after it is shorter: the phase, not
    # each gap, is what must hold. It never drifts, and no probe is pulled half an interval early.
    offsets = [t - i * 0.1 for i, t in enumerate(times)]
    assert max(offsets) - min(offsets) < 0.05, gaps
    assert min(gaps) > 0.05, gaps


def test_transition_interval_while_rising_or_falling():
    async def go():
        probe = Scripted(default=False)
        s = Scheduler(probe=probe)
        s.add("k", A, fast(interval=0.3, transition_interval=0.05, rise=5, fall=5,
                           initial="up"))
        loop = asyncio.get_running_loop()
        start = loop.time()
        await until(lambda: not s.snapshot("k").up)  # 5 samples while falling
        took = loop.time() - start
        n_falling = len(probe.calls)
        await asyncio.sleep(0.3)  # down and steady: back to the slow interval
        n_after = len(probe.calls) - n_falling
        await s.close()
        return took, n_falling, n_after

    took, n_falling, n_after = run(go())
    assert n_falling == 5
    assert took < 4 * 0.3  # at the slow interval it would take 1.2 s
    assert n_after <= 2


def test_remove_stops_probing_and_update_unchanged_keeps_state():
    async def go():
        probe = Scripted()
        s = Scheduler(probe=probe)
        s.add("a", A, fast())
        s.add("b", B, fast())
        await until(lambda: s.snapshot("a").up)
        checks_before = s.snapshot("a").checks
        s.update("a", A, fast())  # identical: nothing restarts
        assert s.snapshot("a").checks == checks_before and s.snapshot("a").up
        s.remove("b")
        n_b = probe.count(B)
        await asyncio.sleep(0.15)
        assert probe.count(B) == n_b and s.snapshot("b") is None
        await s.close()

    run(go())


def test_changed_check_keeps_up_state():
    async def go():
        events = []
        probe = Scripted()
        s = Scheduler(lambda k, up, r: events.append(up), probe=probe)
        s.add("a", A, fast())
        await until(lambda: s.snapshot("a").up)
        status = s.update("a", A, fast(interval=0.07))
        await s.close()
        return status, events

    status, events = run(go())
    assert status.up and status.checks == 0 and events == [True]


def test_sync_applies_a_reload():
    async def go():
        probe = Scripted()
        s = Scheduler(probe=probe)
        s.sync({"a": (A, fast()), "b": (B, fast())})
        await until(lambda: s.snapshot("a").up)
        s.sync({"a": (A, fast()), "c": (Target("127.0.0.1", 1003), fast())})
        keys = set(s.snapshots())
        a = s.snapshot("a")
        await s.close()
        return keys, a

    keys, a = run(go())
    assert keys == {"a", "c"} and a.up and a.checks >= 2


def test_probe_exceptions_and_callback_exceptions_do_not_kill_it():
    async def boom(target, check):
        raise RuntimeError("bug")

    def bad_callback(k, up, r):
        raise ValueError("director bug")

    async def go():
        s = Scheduler(bad_callback, probe=boom)
        s.add("a", A, fast(initial="up", fall=1))
        await until(lambda: s.snapshot("a").checks >= 2)
        snap = s.snapshot("a")
        await s.close()
        return snap

    snap = run(go())
    assert not snap.up and snap.reason == "probe error: RuntimeError: bug" and snap.checks >= 2


def test_with_real_tcp_probe():
    async def go():
        events = []
        s = Scheduler(lambda k, up, r: events.append((up, r.reason)))
        async with adv.serve(adv.hang) as port:
            s.add("real", Target("127.0.0.1", port), fast(interval=0.05, timeout=0.2))
            await until(lambda: events)
        await until(lambda: len(events) == 2)
        snap = s.snapshot("real")
        await s.close()
        return events, snap

    events, snap = run(go())
    assert events == [(True, "connected"), (False, "connection refused")]
    assert snap.failures >= 2 and snap.latency is not None


def test_dynamic_weight_changes_are_reported():
    weights = iter([None, 5, 5, 7, None, None, None, None, None, None, None, None])

    async def probe(target, check):
        return ProbeResult(True, 0.0, "ok", next(weights, None))

    async def go():
        seen = []
        s = Scheduler(on_weight=lambda k, w, r: seen.append((k, w)), probe=probe)
        s.add("a", A, fast())
        await until(lambda: s.snapshot("a").checks >= 6)
        snap = s.snapshot("a")
        await s.close()
        return seen, snap

    seen, snap = run(go())
    assert seen == [("a", 5), ("a", 7), ("a", None)]
    assert snap.weight is None


def test_changed_check_carries_dynamic_weight_then_reports_its_end():
    async def weighted(target, check):
        return ProbeResult(True, 0.0, "ok", 5 if check.dynamic_weight else None)

    async def go():
        seen = []
        s = Scheduler(on_weight=lambda k, w, r: seen.append(w), probe=weighted)
        s.add("a", A, fast(dynamic_weight=True))
        await until(lambda: seen == [5])
        assert s.update("a", A, fast(dynamic_weight=True, interval=0.06)).weight == 5
        await until(lambda: s.snapshot("a").checks >= 1)
        assert seen == [5]  # carried over, not re-reported
        s.update("a", A, fast())
        await until(lambda: seen == [5, None])
        await s.close()

    run(go())


def test_starts_coalesce_into_slots_of_a_tenth_of_the_interval():
    """interval 1 s: starts land on a 100 ms grid (two 50 ms ticks), at most 100 ms
    after their nominal time, never before it; 0.05 s keeps one tick."""

    async def go():
        probe = Scripted()
        s = Scheduler(probe=probe, rng=random.Random(3))
        for i in range(60):
            s.add(i, Target("127.0.0.1", 3000 + i), fast(interval=1.0, jitter=1.0))
        nominal = {p.key.target: p.due for p in s._probes.values()}  # first starts
        await until(lambda: len(probe.calls) >= 60)
        await s.close()
        return [(t, nominal[target]) for t, target in probe.calls[:60]], s._step

    calls, step = run(go())
    assert step(1.0) == 2 and step(0.05) == 1 and step(2.0) == 4 and step(60.0) == 4
    for started, nominal in calls:
        assert nominal - 1e-6 <= started <= nominal + 0.1 + 0.03, (started, nominal)
    # each start is on the 100 ms grid (the loop runs a timer a little after its time)
    slots = {round(started / 0.1 - 0.3) for started, _ in calls}
    assert len(slots) <= 11, sorted(slots)
