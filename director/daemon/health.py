"""The health bridge: probe verdicts become real-server states.

`healthcheck` knows targets and checks, not virtual servers, so the mapping lives
here: the config's real servers become probe subscriptions (at start and on every
reload), rise/fall transitions and dynamic weights become `RealServerState`s for
the reconcile loop, and every sample feeds the per-target histograms /metrics
exports. The scheduler's callbacks run on the event loop and only record and poke
the loop (`on_change`), never write to the kernel themselves.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import structlog

from director.daemon.metrics import CHECK_BUCKETS, Histogram, reason_class
from director.daemon.state_store import AdminDrain, admin_drain_states
from director.reconcile.desired import RealServerState, StateKey, dest_key, service_key

if TYPE_CHECKING:
    from director.config.model import CheckConfig, Config, VirtualServerConfig
    from director.ipvs.model import KernelTable
    from healthcheck import ProbeResult, Scheduler, Target, TargetStatus

log = structlog.get_logger("directord")

HealthKey = tuple[str, str]  # (virtual server name, real server endpoint)
# The scheduler's key of one check of a real server: its HealthKey for the first check, the
# HealthKey and the check's index for the others (a real server may need several to pass).
ProbeSlot = tuple[str, str] | tuple[str, str, int]
CheckKey = tuple[str, int, str]  # (address, port, check type): what one probe's samples are filed under
FailureKey = tuple[str, int, str, str]  # a CheckKey and the failure's reason class
Subscriptions = dict[ProbeSlot, "tuple[Target, CheckConfig]"]
SETTLE_DELAY = 1.0  # seconds: the `none` checks that come up together are dropped in one sync


def probe_target(check: CheckConfig, rs_address: str, rs_port: int) -> Target:
    """The address and port a real server is probed on (the check's `address` and `port` override)."""
    from healthcheck import Target  # late, here and below: a VRRP-only daemon never loads the probes

    address = str(check.address) if check.address is not None else rs_address
    return Target(address, check.port if check.port is not None else rs_port)


def slot(hkey: HealthKey, index: int) -> ProbeSlot:
    return hkey if index == 0 else (*hkey, index)


def targets_from_config(virtual_servers: Iterable[VirtualServerConfig]) -> Subscriptions:
    """Subscriptions for a config: one per check of each real server."""
    return {slot((vs.name, rs.endpoint), index): (probe_target(check, str(rs.address), rs.port),
                                                  _own_host(check, rs.virtualhost))
            for vs in virtual_servers for rs in vs.real_servers for index, check in enumerate(vs.checks_of(rs))}


def _own_host(check: CheckConfig, virtualhost: str | None) -> CheckConfig:
    """A real server's `virtualhost` is its check's Host header (a URL's own still wins)."""
    if virtualhost is None or check.type not in ("http", "https"):
        return check
    return dataclasses.replace(check, host=virtualhost)


def serving(config: Config, kernel: KernelTable) -> set[HealthKey]:
    """Real servers the kernel already serves with a weight. A restart must not take
    servers out: these start "up" and stay so until their checks fail `fall` times."""
    found: set[HealthKey] = set()
    for vs in config.virtual_servers:
        have = kernel.get(service_key(vs))
        for rs in vs.real_servers:
            dest = have.dests.get(dest_key(rs)) if have else None
            if dest is not None and dest.spec.weight > 0:
                found.add((vs.name, rs.endpoint))
    return found


def state_keys(config: Config) -> dict[HealthKey, StateKey]:
    """The scheduler's key of every configured real server, and its real-server state key."""
    return {(vs.name, rs.endpoint): (vs.name, dest_key(rs)) for vs in config.virtual_servers for rs in vs.real_servers}


def check_counts(config: Config) -> dict[HealthKey, int]:
    """Real servers probed by more than one check, and how many."""
    return {(vs.name, rs.endpoint): len(rs.checks) for vs in config.virtual_servers
            for rs in vs.real_servers if len(rs.checks) > 1}


class HealthBridge:
    """Real-server states from the scheduler's verdicts; `on_change` asks for a reconcile pass."""

    def __init__(self, on_change: Callable[[], None], now: Callable[[], float]) -> None:
        """`now` is the steady clock slow start counts `up_since` with."""
        self.now = now
        self.states: dict[StateKey, RealServerState] = {}
        self.keys: dict[HealthKey, StateKey] = {}
        self.counts: dict[HealthKey, int] = {}  # real servers with several checks
        self.failing: dict[HealthKey, set[int]] = {}  # ... and which of them fail now
        self.initial_up: set[HealthKey] = set()
        self.histograms: dict[CheckKey, Histogram] = {}
        self.failures: collections.Counter[FailureKey] = collections.Counter()
        self.scheduler: Scheduler | None = None
        self._on_change = on_change
        # told of every verdict after it is recorded: (key, up, reason); the mail alerts listen here
        self.on_verdict: Callable[[HealthKey, bool, str], None] | None = None
        # told which virtual server a change belongs to, before `on_change`: the reconcile loop
        # recomputes just that one
        self.on_touch: Callable[[str], None] | None = None
        self._config: Config | None = None
        self._settling = False
        self._none: set[HealthKey] = set()  # real servers whose check is `none`

    def start(self, config: Config, kernel: KernelTable) -> None:
        """Start probing `config`'s real servers; `kernel` is the table as this run found it."""
        from healthcheck import Scheduler

        self.initial_up |= serving(config, kernel)
        self.scheduler = Scheduler(self.on_transition, on_weight=self.on_weight, on_sample=self.on_sample)
        self.subscribe(config)

    def reload(self, config: Config) -> None:
        """Follow a reloaded config: unchanged checks keep running and keep their state."""
        if self.scheduler is not None:
            self.subscribe(config)

    def subscribe(self, config: Config) -> None:
        """Make the probes, the states and the sample stores match `config`."""
        assert self.scheduler is not None
        self._config = config
        keys = state_keys(config)
        wanted = self._wanted(config, keys)
        self.scheduler.sync(wanted)  # may report transitions, read against the keys until now
        self.counts = check_counts(config)
        self.failing = {hkey: self._failing_now(hkey, count) for hkey, count in self.counts.items()}
        self._adopt(keys)
        self._prune_samples(wanted)

    def _wanted(self, config: Config, keys: dict[HealthKey, StateKey]) -> Subscriptions:
        wanted = targets_from_config(config.virtual_servers)
        # a real server's only check being `none`: once up, nothing can take it down
        self._none = {pkey for pkey, (_, check) in wanted.items() if check.type == "none" and len(pkey) == 2}
        for pkey, (target, check) in list(wanted.items()):
            if pkey in self._none and self._settled(pkey, keys):
                del wanted[pkey]  # up, and a `none` check never says otherwise: nothing left to probe
            elif pkey[:2] in self.initial_up and check.initial != "up":
                wanted[pkey] = (target, dataclasses.replace(check, initial="up"))
        return wanted

    def _settled(self, hkey: HealthKey, keys: dict[HealthKey, StateKey]) -> bool:
        state = self.states.get(keys[hkey])
        return hkey in self.initial_up if state is None else state.up

    def _settle_soon(self) -> None:
        """A `none` check came up: drop its probe (at rest it would cost a task per interval)
        once this turn of the loop is over, every such check of the turn at once."""
        if self._settling or self.scheduler is None:
            return
        self._settling = True

        def settle() -> None:
            self._settling = False
            if self.scheduler is not None and self._config is not None:
                self.subscribe(self._config)

        try:
            asyncio.get_running_loop().call_later(SETTLE_DELAY, settle)
        except RuntimeError:  # no loop running (a test driving the bridge by hand): probed as before
            self._settling = False

    def _adopt(self, keys: dict[HealthKey, StateKey]) -> None:
        """New real servers start as their probe stands; removed ones are forgotten."""
        assert self.scheduler is not None
        for hkey, skey in keys.items():
            if skey not in self.states:
                if hkey in self.counts:
                    up = not self.failing[hkey]
                else:
                    status = self.scheduler.snapshot(hkey)
                    up = status.up if status is not None else True
                self.states[skey] = RealServerState(up=up, up_since=None)
        for skey in set(self.states) - set(keys.values()):
            del self.states[skey]
        self.keys = keys

    def _failing_now(self, hkey: HealthKey, count: int) -> set[int]:
        assert self.scheduler is not None
        statuses = [self.scheduler.snapshot(slot(hkey, index)) for index in range(count)]
        return {index for index, status in enumerate(statuses) if status is not None and not status.up}

    def _prune_samples(self, wanted: Subscriptions) -> None:
        probed = {(target.address, target.port, check.type) for target, check in wanted.values()}
        for key in set(self.histograms) - probed:
            del self.histograms[key]
        for key in [k for k in self.failures if k[:3] not in probed]:
            del self.failures[key]

    async def close(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.close()

    # --- views ------------------------------------------------------------------------------

    def check_status(self, key: HealthKey) -> TargetStatus | None:
        """The scheduler's view of one real server's probe, for status: with several checks,
        the first that fails (else the first)."""
        if self.scheduler is None:
            return None
        failing = self.failing.get(key)
        return self.scheduler.snapshot(slot(key, min(failing)) if failing else key)

    def with_drains(self, config: Config, drains: list[AdminDrain]) -> dict[StateKey, RealServerState]:
        """The states with the admin drains applied: what a pass, status and /metrics read."""
        drained = admin_drain_states(config, drains)
        return {key: (dataclasses.replace(state, admin_drained=True) if key in drained else state)
                for key, state in self.states.items()}

    # --- the scheduler's callbacks -------------------------------------------------------------

    def on_sample(self, target: Target, check: CheckConfig, result: ProbeResult) -> None:
        """Every sample feeds the check-duration histogram and the failure counters."""
        key = (target.address, target.port, check.type)
        histogram = self.histograms.get(key)
        if histogram is None:
            histogram = self.histograms[key] = Histogram(CHECK_BUCKETS)
        histogram.observe(result.latency)
        if not result.ok:
            self.failures[(*key, reason_class(result.reason))] += 1

    def on_transition(self, pkey: ProbeSlot, up: bool, result: ProbeResult) -> None:
        hkey: HealthKey = (pkey[0], pkey[1])
        skey = self.keys.get(hkey)
        if skey is None:
            return
        old = self.states.get(skey, RealServerState())
        if hkey in self.counts:
            if not self._all_pass(hkey, pkey, up, result, old):
                return
            up = not self.failing[hkey]
        self.states[skey] = dataclasses.replace(old, up=up, up_since=self.now() if up else None)
        log.info("real server up" if up else "real server down", virtual_server=hkey[0],
                 real_server=hkey[1], reason=result.reason, latency_ms=round(result.latency * 1000, 1))
        self._changed(hkey[0])
        if self.on_verdict is not None:
            self.on_verdict(hkey, up, result.reason)
        if up and hkey in self._none:
            self._settle_soon()

    def _all_pass(self, hkey: HealthKey, pkey: ProbeSlot, up: bool, result: ProbeResult,
                  old: RealServerState) -> bool:
        """Record one of several checks' verdict; whether the real server's own verdict changes."""
        failing = self.failing.setdefault(hkey, set())
        index = pkey[2] if len(pkey) == 3 else 0
        (failing.discard if up else failing.add)(index)
        log.info("check passes" if up else "check fails", virtual_server=hkey[0], real_server=hkey[1],
                 check=index, of=self.counts[hkey], reason=result.reason)
        return (not failing) != old.up

    def on_weight(self, pkey: ProbeSlot, weight: int | None, result: ProbeResult) -> None:
        hkey: HealthKey = (pkey[0], pkey[1])
        skey = self.keys.get(hkey)
        if skey is None:
            return
        self.states[skey] = dataclasses.replace(self.states.get(skey, RealServerState()), dynamic_weight=weight)
        log.info("dynamic weight", virtual_server=hkey[0], real_server=hkey[1], weight=weight)
        self._changed(hkey[0])

    def _changed(self, name: str) -> None:
        if self.on_touch is not None:
            self.on_touch(name)
        self._on_change()
