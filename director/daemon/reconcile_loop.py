"""The reconcile loop: when a pass runs, what follows from it, and what a stop leaves.

A pass runs every `reconcile_interval`, at once when health or an admin asks
(`poke`), and every `RAMP_STEP` while a slow start ramps. Each pass is one
`director.reconcile.apply.reconcile_pass` on the IPVS thread; afterwards the loop
keeps the table it left (status and /metrics read it), counts it, answers the
reloads that wait for it, saves the state when the kernel changed, and tells VRRP
which virtual servers lost or regained quorum.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Mapping

import structlog

from director.config.model import Config
from director.daemon.health import HealthBridge
from director.daemon.ipvs_thread import IpvsThread
from director.daemon.metrics import RECONCILE_BUCKETS, Histogram
from director.daemon.state_store import StateError, StateStore
from director.daemon.status import ReconcileCounters
from director.daemon.steady_clock import SteadyClock, current_anchor
from director.daemon.vrrp_child import VrrpProcess, VrrpProcessError
from director.ipvs.model import DeleteService, IpvsBackend, KernelTable
from director.ipvs.sysctl import IpvsSysctl
from director.reconcile.apply import PassReport, reconcile_pass
from director.reconcile.desired import DesiredTable, RealServerState, StateKey

log = structlog.get_logger("directord")

RAMP_STEP = 1.0  # seconds between reconcile passes while a slow start ramps


def next_pass_in(config: Config, states: Mapping[StateKey, RealServerState], now: float) -> float:
    """Seconds to the next pass when nothing asks for one sooner."""
    interval = config.global_.reconcile_interval
    slow = {vs.name: vs.slow_start for vs in config.virtual_servers if vs.slow_start}
    for (name, _), state in states.items() if slow else ():
        if name in slow and state.up_since and now - state.up_since < slow[name]:
            return min(interval, RAMP_STEP)
    return interval


class ReconcileLoop:
    """Holds the running config with its generation (bumped by each reload), the
    persisted state, and what the last pass saw and did."""

    def __init__(self, config: Config, backend: IpvsBackend | None, ipvs: IpvsThread, store: StateStore,
                 health: HealthBridge, vrrp: VrrpProcess | None, wake: asyncio.Event,
                 on_pass: Callable[[], None]) -> None:
        """`wake` is set by whatever needs a pass now (see `poke`). Loads the state file
        first: a StateError stops the daemon before anything starts."""
        self.store = store
        self.state = store.load()
        self.state.clock = current_anchor(self.state.clock)
        self.clock = SteadyClock(self.state.clock)
        self.config = config
        self.generation = 0  # a pass applies the generation it started with
        self.backend = backend
        self.kernel: KernelTable | None = None  # the table as the last pass left it
        self.desired: DesiredTable | None = None
        self.counters = ReconcileCounters()
        self.histogram = Histogram(RECONCILE_BUCKETS)
        self.quorum_ok: dict[str, bool] = {}
        self.on_quorum: Callable[[str, bool, bool], None] | None = None  # (name, ok, first pass): mail alerts
        self.dirty = wake
        self._ipvs = ipvs
        self._health = health
        self._vrrp = vrrp
        self._on_pass = on_pass
        self._applied: list[tuple[int, asyncio.Future[PassReport]]] = []
        self._sysctl = IpvsSysctl() if backend is not None else None

    @property
    def has_kernel(self) -> bool:
        """False in a VRRP-only daemon: no pass ever runs."""
        return self.backend is not None

    def reload(self, config: Config) -> None:
        """Run `config` from the next pass on (the caller pokes once every part follows it)."""
        self.config = config
        self.generation += 1

    def poke(self) -> None:
        """Ask for a pass now: a verdict, a drain or a reload changed what the kernel should hold."""
        self.dirty.set()

    def real_server_states(self) -> dict[StateKey, RealServerState]:
        return self._health.with_drains(self.config, self.state.admin_drains)

    async def run(self) -> None:
        while True:
            await self._pass()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that meets a set
            # event (a verdict as the daemon stops), and the stop then waits on this loop for ever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_pass_in()):
                    await self.dirty.wait()
            self.dirty.clear()

    def _next_pass_in(self) -> float:
        return next_pass_in(self.config, self._health.states, self.clock.now())

    async def _pass(self) -> None:
        assert self.backend is not None
        config, states, generation = self.config, self.real_server_states(), self.generation
        began = time.monotonic()
        try:
            report = await self._ipvs.call(functools.partial(
                reconcile_pass, config, self.backend, self.state.book, self.clock.now(), states, sysctl=self._sysctl))
            # Status and metrics read the table as it is after this pass's writes.
            self.kernel = report.kernel if not report.changes else await self._ipvs.call(self.backend.dump)
        except Exception as exc:  # one bad pass must not stop the daemon: the next one retries
            # a kernel error's message says it all; anything else is a bug, so keep its traceback
            log.error("reconcile pass failed", error=f"{type(exc).__name__}: {exc}",
                      exc_info=not isinstance(exc, OSError))
            self.counters.errors_total += 1
            self.counters.last_errors = [f"reconcile pass failed: {type(exc).__name__}: {exc}"]
            return
        self.desired = report.desired
        self._count(report, time.monotonic() - began)
        self._tell_waiters(generation, report)
        self._on_pass()
        _log_report(report)
        if report.changes:
            await self.save()
        self._update_quorum(report)

    def _count(self, report: PassReport, duration: float) -> None:
        counters = self.counters
        counters.passes += 1
        counters.last_pass_at = time.time()
        counters.last_duration = duration
        self.histogram.observe(duration)
        for change in report.changes:
            counters.operations[change.action] = counters.operations.get(change.action, 0) + 1
        counters.errors_total += len(report.errors)
        counters.last_errors = list(report.errors)

    # --- reloads waiting for their pass ----------------------------------------------------------

    def _tell_waiters(self, generation: int, report: PassReport) -> None:
        waiting = []
        for wanted, future in self._applied:
            if wanted > generation:
                waiting.append((wanted, future))
            elif not future.done():
                future.set_result(report)
        self._applied = waiting

    async def applied(self, timeout: float) -> PassReport | None:
        """The report of the first pass run with the current config; None if none ends in time."""
        if self.backend is None:
            return None
        future: asyncio.Future[PassReport] = asyncio.get_running_loop().create_future()
        self._applied.append((self.generation, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None

    # --- quorum -> VRRP tracking -------------------------------------------------------------------

    def _update_quorum(self, report: PassReport) -> None:
        for desired in report.desired.values():
            ok = not desired.quorum_lost
            if self.quorum_ok.get(desired.name) != ok:
                first = desired.name not in self.quorum_ok
                self.quorum_ok[desired.name] = ok
                if self.on_quorum is not None:
                    self.on_quorum(desired.name, ok, first)
                log.info("quorum " + ("reached" if ok else "lost"), virtual_server=desired.name)
                if self._vrrp is not None:
                    with contextlib.suppress(VrrpProcessError):  # only while stopping
                        self._vrrp.set_tracked_virtual_server(desired.name, ok)

    # --- the state file and the stop ---------------------------------------------------------------

    async def save(self) -> str | None:
        """Write the state file on the IPVS thread (after the writes queued before it);
        why it failed, if it did."""
        return await self._ipvs.call(self.persist)

    def persist(self) -> str | None:
        try:
            self.store.save(self.state)
        except StateError as exc:
            self.counters.state_write_errors += 1
            log.error("cannot save state", error=str(exc))
            return str(exc)
        return None

    async def stop(self) -> None:
        """What a stop leaves: by default the IPVS table stays as it is (a restart drops
        nothing); `[ipvs] on_stop = "remove"` takes this daemon's services out first."""
        assert self.backend is not None
        if self.config.ipvs.on_stop == "remove":
            await self._ipvs.call(self._remove_owned)
        await self.save()
        self.backend.close()

    def _remove_owned(self) -> None:
        """Delete the services this daemon put in the kernel (never ones made by hand or
        by others) and stop its sync threads."""
        assert self.backend is not None
        book = self.state.book
        errors = self.backend.execute([DeleteService(key) for key in book.owned])
        for error in errors:
            log.error("ipvs operation failed", error=f"{error.op}: {error.message}")
        kept = {error.op.key for error in errors if isinstance(error.op, DeleteService)}
        removed = book.owned.keys() - kept
        book.owned = {key: book.owned[key] for key in kept}
        book.draining = {entry: since for entry, since in book.draining.items() if entry[0] not in removed}
        if self.config.ipvs.sync_daemon is not None:
            try:
                for daemon in self.backend.sync_daemons():
                    self.backend.stop_sync_daemon(daemon.state)
            except OSError as exc:
                log.error("ipvs sync daemon stop failed", error=str(exc))
        log.info("removed this daemon's IPVS services on stop", services=len(removed), kept_on_error=len(kept))


def _field_values(fields: Mapping[str, tuple[object, object]]) -> dict[str, str]:
    """One logfmt key per field: `weight=10` for a new entry, `weight=0->10` for a change."""
    return {key: str(new) if old is None else f"{old}->{new}" for key, (old, new) in fields.items()}


def _log_report(report: PassReport) -> None:
    for change in report.changes:
        log.info("ipvs " + change.action, entry=change.entry, **_field_values(change.fields))
    for line in report.errors:
        log.error("ipvs operation failed", error=line)
