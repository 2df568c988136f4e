"""The probe scheduler: when each target is probed, and what its samples add up to.

One asyncio event loop drives every target through a timer wheel: due times are
rounded up to a tick (50 ms by default) and each tick that has work holds one loop
timer, so 10,000 probes a second cost 20 timer wake-ups, not 10,000, and the
connects started in one tick complete in shared event-loop iterations too (no
thread or sleeping task per target). The tick's cost against finer ticks is
measured in benchmarks/healthcheck_results.md.

Starts are coalesced further: a probe's start is rounded up to a slot of 1, 2 or
4 ticks, the largest that is at most a tenth of its interval (1 s: 100 ms; 2 s
and more: 200 ms). With few targets each wake-up then starts (and later reads)
more checks; with few targets a timer wake-up costs more than the checks it
starts (benchmarks/healthcheck_results.md). So a probe starts at most one slot late
(interval / 10, at least one tick, at most four), never early, and the lateness
never accumulates (the next start is the last nominal start + interval).
Timeouts keep their own 50 ms wheel (`_poll.DEADLINE_TICK`): a check times out
at most one tick late.

With the built-in probes, tcp, plain http, dns, udp and ping checks run as callback
state machines on one shared epoll (`_poll`, `_dgram`, ping's shared socket): no task,
coroutine or future per check. Other types (https, sip, smtp, exec, none), and every
check when a custom `probe`
coroutine is given, run as one task per check in flight; to observe samples
without losing the callback path, use `on_sample` rather than wrapping `probe`.

First probes are spread over `jitter * interval` so thousands of targets never fire in the same
tick; later probes keep that phase (next start = last nominal start + interval).

Subscribers are the director's keys (one per virtual server / real server pair).
Subscribers whose (target, check) are equal share one probe and one rise/fall
state: a backend behind several virtual IPs is probed once.

All methods must be called from the event loop's thread. `on_transition(key, up,
result)` is called synchronously from the loop when rise/fall flips a state, and
`on_weight(key, weight, result)` when a passing sample reports a different dynamic
weight (exec checks with `dynamic_weight`; None means back to the configured
weight). `on_sample(target, check, result)` sees every sample (one per shared
probe), e.g. for latency histograms. None may block: schedule work if needed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from healthcheck import _poll, probes
from healthcheck._io import describe_error
from healthcheck.result import ProbeResult, Target
from healthcheck.riseful import RiseFall

if TYPE_CHECKING:
    from director.config.model import CheckConfig

log = logging.getLogger(__name__)

TICK = 0.05  # default timer-wheel resolution, seconds
LATE_FRACTION = 0.1  # of its interval, a probe's start may be rounded up by
MAX_STEP = 4  # ticks: the coarsest start slot

TargetKey = Hashable
OnTransition = Callable[[TargetKey, bool, ProbeResult], None]
OnWeight = Callable[[TargetKey, int | None, ProbeResult], None]
OnSample = Callable[[Target, "CheckConfig", ProbeResult], None]


@dataclass(frozen=True, slots=True)
class ProbeKey:
    """What makes two subscriptions the same probe."""

    target: Target
    check: CheckConfig


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """A point-in-time view of one probe, for status output and metrics."""

    target: Target
    check_type: str
    up: bool
    state: str  # up | down | rising | falling
    reason: str  # last sample's reason ("" before the first sample)
    latency: float | None
    weight: int | None  # dynamic weight from the last passing sample (None: configured)
    run: int  # consecutive samples against the current state
    rise: int
    fall: int
    checks: int  # samples taken
    failures: int  # failed samples
    since: float  # wall time of the last transition (or of creation)
    last_checked: float | None  # wall time of the last sample
    shared_by: int  # subscribers fed by this probe
    last: ProbeResult | None


class _Probe:
    """One shared probe: its timer, in-flight check, rise/fall state and counters."""

    __slots__ = ("alive", "checked_at", "checks", "due", "failures", "handle", "key", "last",
                 "plan", "rf", "since", "slot", "subscribers", "weight")

    def __init__(self, key: ProbeKey, up: bool) -> None:
        self.key = key
        self.alive = True  # False once removed: cheaper than a dict lookup per sample
        self.rf = RiseFall(key.check.rise, key.check.fall, up)
        self.subscribers: set[TargetKey] = set()
        self.last: ProbeResult | None = None
        self.checks = 0
        self.failures = 0
        self.since = time.time()
        self.checked_at: float | None = None  # loop time of the last sample
        self.slot: int | None = None  # timer-wheel slot it waits in, if any
        self.due = 0.0  # nominal start time (before rounding to a tick)
        self.handle: asyncio.Task | _poll.Conn | None = None  # the check in flight (or last)
        self.plan: _poll.Plan | None = None  # set for callback checks
        self.weight: int | None = None  # last weight a passing sample reported

    def status(self, wall_offset: float) -> TargetStatus:
        """`wall_offset`: wall clock minus loop clock, to date the last sample."""
        last = self.last
        return TargetStatus(
            target=self.key.target,
            check_type=self.key.check.type,
            up=self.rf.up,
            state=self.rf.state,
            reason=last.reason if last else "",
            latency=last.latency if last else None,
            weight=self.weight,
            run=self.rf.run,
            rise=self.rf.rise,
            fall=self.rf.fall,
            checks=self.checks,
            failures=self.failures,
            since=self.since,
            last_checked=None if self.checked_at is None else self.checked_at + wall_offset,
            shared_by=len(self.subscribers),
            last=last,
        )


class Scheduler:
    """Probes targets forever; reports up/down transitions per subscriber key."""

    def __init__(
        self,
        on_transition: OnTransition | None = None,
        *,
        on_weight: OnWeight | None = None,
        probe: probes.ProbeFn = probes.probe,
        on_sample: OnSample | None = None,
        rng: random.Random | None = None,
        tick: float = TICK,
    ) -> None:
        self._on_transition = on_transition
        self._on_weight = on_weight
        self._on_sample = on_sample
        self._probe_fn = probe
        # callback checks only with the built-in probes (a custom one is a coroutine)
        self._callbacks = probe is probes.probe
        self._poller: _poll.Poller | None = None
        self._rng = rng or random.Random()
        self._probes: dict[ProbeKey, _Probe] = {}
        self._subs: dict[TargetKey, ProbeKey] = {}
        self._closed = False
        self._wheel: dict[int, list[_Probe]] = {}
        self._tick = tick
        self._steps: dict[float, int] = {}  # interval -> start slot size, in ticks
        self._loop: asyncio.AbstractEventLoop  # bound by the first add()

    # --- the set of targets -----------------------------------------------------------

    def add(self, key: TargetKey, target: Target, check: CheckConfig) -> TargetStatus:
        """Subscribe `key`; an existing key is updated. Returns the state it starts in."""
        if key in self._subs:
            return self.update(key, target, check)
        probe = self._join(key, ProbeKey(target, check), None)
        return probe.status(self._wall_offset())

    def update(self, key: TargetKey, target: Target, check: CheckConfig) -> TargetStatus:
        """Point `key` at a (possibly) new target/check. Unchanged: nothing restarts.

        A changed check keeps the up/down state it had, so a reload that only tunes
        the interval does not take servers out. If `key` ends up sharing a probe
        whose state differs, `on_transition` reports it before this returns.
        """
        new = ProbeKey(target, check)
        old = self._subs.get(key)
        if old is None:
            return self.add(key, target, check)
        if old == new:
            return self._probes[old].status(self._wall_offset())
        old_probe = self._probes[old]
        was_up, had_weight = old_probe.rf.up, old_probe.weight
        self._leave(key)
        probe = self._join(key, new, was_up, had_weight)
        why = ProbeResult(probe.rf.up, 0.0, "check changed; now sharing a probe in this state")
        if probe.rf.up != was_up:
            self._notify(key, probe.rf.up, probe.last or why)
        if probe.weight != had_weight:
            self._call(self._on_weight, key, probe.weight, probe.last or why)
        return probe.status(self._wall_offset())

    def remove(self, key: TargetKey) -> None:
        if key in self._subs:
            self._leave(key)

    def sync(self, desired: Mapping[TargetKey, tuple[Target, CheckConfig]]) -> None:
        """Make the subscriptions equal `desired` (a config reload), touching only changes."""
        for key in [k for k in self._subs if k not in desired]:
            self.remove(key)
        for key, (target, check) in desired.items():
            self.update(key, target, check)

    async def close(self) -> None:
        """Stop every probe and wait for in-flight ones to unwind."""
        self._closed = True
        tasks = [p.handle for p in self._probes.values() if isinstance(p.handle, asyncio.Future)]
        for key in list(self._subs):
            self._leave(key)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- views ------------------------------------------------------------------------

    def snapshot(self, key: TargetKey) -> TargetStatus | None:
        pk = self._subs.get(key)
        return self._probes[pk].status(self._wall_offset()) if pk is not None else None

    def snapshots(self) -> dict[TargetKey, TargetStatus]:
        """Status per subscriber key; shared probes are built once."""
        built: dict[ProbeKey, TargetStatus] = {}
        out: dict[TargetKey, TargetStatus] = {}
        offset = self._wall_offset() if self._subs else 0.0
        for key, pk in self._subs.items():
            if pk not in built:
                built[pk] = self._probes[pk].status(offset)
            out[key] = built[pk]
        return out

    def __len__(self) -> int:
        """Distinct probes running (after sharing)."""
        return len(self._probes)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    # --- internals --------------------------------------------------------------------

    def _wall_offset(self) -> float:
        """Wall clock minus loop clock: samples are timed on the loop clock (cheaper)."""
        return time.time() - self._loop.time()

    def _join(self, key: TargetKey, pk: ProbeKey, carry_up: bool | None,
              carry_weight: int | None = None) -> _Probe:
        """Subscribe to the probe for `pk`, starting it if new (seeded with carried state)."""
        probe = self._probes.get(pk)
        if probe is None:
            up = carry_up if carry_up is not None else pk.check.initial == "up"
            probe = self._probes[pk] = _Probe(pk, up)
            probe.weight = carry_weight
            if self._callbacks:
                probe.plan = probes.plan(pk.target, pk.check)
            self._start(probe)
        probe.subscribers.add(key)
        self._subs[key] = pk
        return probe

    def _leave(self, key: TargetKey) -> None:
        pk = self._subs.pop(key)
        probe = self._probes[pk]
        probe.subscribers.discard(key)
        if not probe.subscribers:
            del self._probes[pk]
            probe.alive = False
            probe.slot = None
            if probe.handle is not None:
                probe.handle.cancel()
            if probe.plan is not None:
                probe.plan.close()  # its kept socket

    def _start(self, probe: _Probe) -> None:
        check = probe.key.check
        spread = max(0.0, min(check.jitter, 1.0)) * check.interval
        delay = self._rng.uniform(0.0, spread) if spread > 0 else 0.0
        loop = self._loop = asyncio.get_running_loop()
        if probe.plan is not None and self._poller is None:
            self._poller = _poll.poller(loop)
        self._schedule(probe, loop.time() + delay, check.interval)

    def _step(self, interval: float) -> int:
        """Ticks per start slot for this interval: 1, 2 or 4 (nested, so the slots
        of different intervals still share wake-ups)."""
        step = self._steps.get(interval)
        if step is None:
            step = 1
            while step < MAX_STEP and 2 * step * self._tick <= interval * LATE_FRACTION + 1e-9:
                step *= 2
            self._steps[interval] = step
        return step

    def _schedule(self, probe: _Probe, due: float, interval: float) -> None:
        probe.due = due
        step = self._steps.get(interval) or self._step(interval)
        slot = math.ceil(due / (self._tick * step) - 1e-9) * step
        bucket = self._wheel.get(slot)
        if bucket is None:
            bucket = self._wheel[slot] = []
            self._loop.call_at(slot * self._tick, self._fire_slot, slot)
        bucket.append(probe)
        probe.slot = slot

    def _fire_slot(self, slot: int) -> None:
        if self._poller is not None:
            self._poller.refresh()  # one clock read for every check this tick starts
        for probe in self._wheel.pop(slot, ()):
            if probe.slot == slot:
                self._fire(probe)

    def _fire(self, probe: _Probe) -> None:
        probe.slot = None
        if not probe.alive or self._closed:
            return
        if probe.plan is not None:
            # done may already have run when start returns: cancel() is then a no-op
            probe.handle = probe.plan.start(self._poller, self._sampled, probe)
            return
        probe.handle = self._loop.create_task(self._run(probe))

    async def _run(self, probe: _Probe) -> None:
        loop = self._loop
        started = loop.time()
        try:
            result = await self._probe_fn(probe.key.target, probe.key.check)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a probe bug is a failed sample, never a dead scheduler
            log.exception("probe of %s raised", probe.key.target.endpoint)
            result = ProbeResult(False, loop.time() - started, f"probe error: {describe_error(exc)}")
        probe.handle = None
        self._after(probe, result, loop.time())

    def _sampled(self, probe: _Probe, result: ProbeResult) -> None:
        """A callback check finished (`done`): the poller's clock is current."""
        self._after(probe, result, self._poller.now + self._poller.skew)

    def _after(self, probe: _Probe, result: ProbeResult, now: float) -> None:
        """Record a sample taken at loop time `now` and schedule the next one."""
        if not probe.alive:
            return  # removed while in flight
        if self._on_sample is not None:
            try:
                self._on_sample(probe.key.target, probe.key.check, result)
            except Exception:
                log.exception("health-check sample callback raised")
        # record the sample (inline: this runs once per check)
        probe.last = result
        probe.checks += 1
        probe.checked_at = now
        if not result.ok:
            probe.failures += 1
        elif result.weight != probe.weight:
            probe.weight = result.weight
            for key in list(probe.subscribers):
                self._call(self._on_weight, key, result.weight, result)
        change = probe.rf.feed(result.ok)
        if change is not None:
            probe.since = time.time()
            for key in list(probe.subscribers):
                self._notify(key, change, result)
        if probe.alive:  # a callback may have removed it
            # fixed rate from the nominal start: tick rounding never accumulates
            check = probe.key.check
            interval = check.interval
            if probe.rf.transitioning and check.transition_interval is not None:
                interval = check.transition_interval
            self._schedule(probe, max(probe.due + interval, now), interval)

    def _notify(self, key: TargetKey, up: bool, result: ProbeResult) -> None:
        self._call(self._on_transition, key, up, result)

    @staticmethod
    def _call(callback: Callable | None, key: TargetKey, value: object, result: ProbeResult) -> None:
        if callback is None:
            return
        try:
            callback(key, value, result)
        except Exception:  # a director bug must not stop the probing
            log.exception("health-check callback for %r raised", key)

