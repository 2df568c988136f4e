"""The reconcile loop: when a pass runs, what it touches, and what a stop leaves.

The cost follows what changed. The desired table is kept from pass to pass
(`director.reconcile.incremental`) and the kernel's table is mirrored
(`director.reconcile.mirror`), so a verdict, a drain or a slow-start step plans and
writes only the services it touches, in one batch, with no dump. Tampering is found by
the rolling audit (`director.reconcile.audit`): every `reconcile_interval` the next slice
of the owned services is re-read and repaired, so each is audited within `audit_period`.
A full pass (dump everything, compare everything) runs at start and after each reload.
Afterwards the loop counts what it did, answers the reloads that wait for it, saves the
state when the kernel changed, and tells VRRP which virtual servers lost or regained quorum.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Mapping

import structlog

from director.config.model import Config, VirtualServerConfig
from director.daemon.health import HealthBridge
from director.daemon.ipvs_thread import IpvsThread
from director.daemon.metrics import RECONCILE_BUCKETS, Histogram
from director.daemon.state_store import StateError, StateStore
from director.daemon.status import ReconcileCounters
from director.daemon.steady_clock import SteadyClock, current_anchor
from director.daemon.vrrp_child import VrrpProcess, VrrpProcessError
from director.ipvs.model import DeleteService, IpvsBackend, KernelTable, ServiceKey
from director.ipvs.sysctl import IpvsSysctl
from director.reconcile.apply import PassReport, TargetedReport, reconcile_pass, reconcile_services, settings_pass
from director.reconcile.audit import Audit
from director.reconcile.desired import DesiredTable, RealServerState, StateKey, dest_key
from director.reconcile.incremental import DesiredCache, DrainedStates

log = structlog.get_logger("directord")

RAMP_STEP = 1.0  # seconds between reconcile passes while a slow start ramps
# Services an audit pass reads at most: a verdict arriving during a tick's slice waits for
# one chunk, not the whole slice (hundreds of services at 10k).
AUDIT_CHUNK = 8


def next_pass_in(config: Config, states: Mapping[StateKey, RealServerState], now: float) -> float:
    """Seconds to the next pass when nothing asks for one sooner."""
    interval = config.global_.reconcile_interval
    return min(interval, RAMP_STEP) if ramping(config.virtual_servers, states, now) else interval


def ramping(virtual_servers: Iterable[VirtualServerConfig], states: Mapping[StateKey, RealServerState],
            now: float) -> set[str]:
    """The virtual servers with a real server still in its slow start."""
    names = set()
    for vs in virtual_servers:
        if not vs.slow_start:
            continue
        for rs in vs.real_servers:
            state = states.get((vs.name, dest_key(rs)))
            if state is not None and state.up_since and now - state.up_since < vs.slow_start:
                names.add(vs.name)
                break
    return names


class ReconcileLoop:
    """Holds the running config with its generation (bumped by each reload), the
    persisted state, the desired table, the mirror of the kernel and the audit."""

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
        self.last_load_seconds: float | None = None  # reading and checking the file, at the last reload
        self.backend = backend
        self.kernel: KernelTable | None = None  # the mirror: the table as this daemon last read or wrote it
        self.cache = DesiredCache()
        self.audit = Audit(config.global_.audit_period)
        self.counters = ReconcileCounters(audit=self.audit.progress)  # status and /metrics show its progress
        self.histogram = Histogram(RECONCILE_BUCKETS)
        self.quorum_ok: dict[str, bool] = {}
        self.on_quorum: Callable[[str, bool, bool], None] | None = None  # (name, ok, first pass): mail alerts
        self.dirty = wake
        self._ipvs = ipvs
        self._health = health
        health.on_touch = self.touch
        self._vrrp = vrrp
        self._on_pass = on_pass
        self._applied: list[tuple[int, asyncio.Future[PassReport]]] = []
        self._sysctl = IpvsSysctl() if backend is not None else None
        self._followed = -1  # the generation the desired table follows
        self._full = True  # the next pass dumps and compares everything
        self._drained: set[StateKey] = set()
        self._ramping: set[str] = set()
        self._read: set[ServiceKey] = set()  # touched services to re-read before planning (reload)
        self._next_audit = 0.0  # monotonic time of the next audit slice
        self._by_address: dict[str, list[StateKey]] = {}  # configured real servers by address (drains)
        self._indexed: Config | None = None  # the config _by_address was built from
        self._slow: list[VirtualServerConfig] = []  # the virtual servers with a slow start
        self._full_after = False
        self._audit_queue: list[ServiceKey] = []  # this tick's slice, read a chunk per pass

    @property
    def has_kernel(self) -> bool:
        """False in a VRRP-only daemon: no pass ever runs."""
        return self.backend is not None

    @property
    def desired(self) -> DesiredTable | None:
        return self.cache.table if self.kernel is not None else None

    def reload(self, config: Config) -> None:
        """Run `config` from the next pass on (the caller pokes once every part follows it)."""
        self.config = config
        self.generation += 1
        self.audit.period = config.global_.audit_period

    def poke(self) -> None:
        """Ask for a pass now: a reload changed what the kernel should hold."""
        self.dirty.set()

    def touch(self, name: str) -> None:
        """A real server of virtual server `name` changed state: recompute it, write at once."""
        self.cache.touch((name,))
        self.dirty.set()

    def drains_changed(self) -> None:
        """The admin drains changed: recompute the virtual servers whose drain state moved."""
        drained = self._drained_now()
        self.cache.touch({name for name, _ in drained ^ self._drained})
        self._drained = drained
        self.dirty.set()

    def _drained_now(self) -> set[StateKey]:
        """The real servers the admin drains cover (cost: the servers with a drained address)."""
        drained: set[StateKey] = set()
        if self._indexed is not self.config:
            self._by_address = {}
            for vs in self.config.virtual_servers:
                for rs in vs.real_servers:
                    dkey = dest_key(rs)
                    self._by_address.setdefault(dkey.address, []).append((vs.name, dkey))
            self._indexed = self.config
        for drain in self.state.admin_drains:
            drained.update(skey for skey in self._by_address.get(drain.address, ()) if drain.matches(*skey))
        return drained

    def real_server_states(self) -> dict[StateKey, RealServerState]:
        return self._health.with_drains(self.config, self.state.admin_drains)

    def states_view(self) -> DrainedStates:
        """The states with the drains, as a view (no copy per scrape at 10k real servers)."""
        return DrainedStates(self._health.states, self._drained)

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
        until_audit = max(0.0, self._next_audit - time.monotonic())
        if self._full:  # at once, or after a failed pass at the next tick
            return until_audit
        if self.cache.pending or self._audit_queue:
            return 0.0
        return min(until_audit, RAMP_STEP) if self._ramping else until_audit

    # --- one pass --------------------------------------------------------------------------------

    def _follow(self) -> set[ServiceKey]:
        """Bring the desired table to the running config and the states; the keys it changed."""
        config, generation = self.config, self.generation
        followed = generation != self._followed
        if followed:
            self.cache.follow(config)
            self._slow = [vs for vs in config.virtual_servers if vs.slow_start]
            self._full_after = self._followed >= 0  # a reload: a full pass once it is answered
            self._followed = generation
            self._drained = self._drained_now()
        now = self.clock.now()
        ramp = ramping(self._slow, self._health.states, now) if self._slow else set()
        self.cache.touch(ramp | self._ramping)  # one more pass after a ramp ends: the full weight
        self._ramping = ramp
        changed = self.cache.recompute(self.states_view(), now)
        if followed:
            self._read |= changed  # what a reload changed is re-read before it is planned
        return changed

    async def _pass(self) -> None:
        assert self.backend is not None
        began = time.monotonic()
        generation = self.generation
        book = self.state.book
        owned, draining = len(book.owned), dict(book.draining)  # to save the state only when it changed
        try:
            changed = self._follow()
            full = self._full
            audit_due = began >= self._next_audit
            if full:
                report = await self._full_pass()
            elif changed or audit_due or self._audit_queue:
                report = await self._targeted_pass(changed, audit_due)
            else:
                self._tell_waiters(generation, PassReport(desired=self.cache.table, kernel=self.kernel or {}))
                return
        except Exception as exc:  # one bad pass must not stop the daemon: the next one retries
            # a kernel error's message says it all; anything else is a bug, so keep its traceback
            log.error("reconcile pass failed", error=f"{type(exc).__name__}: {exc}",
                      exc_info=not isinstance(exc, OSError))
            self.counters.errors_total += 1
            self.counters.last_errors = [f"reconcile pass failed: {type(exc).__name__}: {exc}"]
            self._full = True  # what the mirror holds is unknown now
            self._next_audit = time.monotonic() + self.config.global_.reconcile_interval
            return
        self._count(report, time.monotonic() - began)
        self._tell_waiters(generation, report)
        if report.changes or full:
            self._on_pass()
        _log_report(report)
        # a weight change alone leaves nothing new to persist; a full pass or a reload's may
        if report.changes and (full or self._full_after or len(book.owned) != owned or book.draining != draining):
            await self.save()
        self._update_quorum(report.desired if full else {k: self.cache.table[k] for k in changed
                                                          if k in self.cache.table})
        if self._full_after:
            self._full_after = False
            self._full = True  # after a reload: the targeted pass answered it, a full one checks all

    async def _full_pass(self) -> PassReport:
        assert self.backend is not None
        config = self.config
        report = await self._ipvs.call(functools.partial(
            reconcile_pass, config, self.backend, self.state.book, self.clock.now(), self.states_view(),
            sysctl=self._sysctl, desired=self.cache.table))
        self.kernel = report.kernel
        self._full = False
        self._read.clear()
        self._audit_queue = []
        self.audit.restart(time.monotonic())
        self._next_audit = time.monotonic() + config.global_.reconcile_interval
        self.counters.full_passes += 1
        return report

    async def _targeted_pass(self, changed: set[ServiceKey], audit_due: bool) -> PassReport:
        """The touched services and the next chunk of the audit's slice, in one batch."""
        assert self.backend is not None and self.kernel is not None
        config, book = self.config, self.state.book
        interval = config.global_.reconcile_interval
        if audit_due:
            self._audit_queue += self.audit.next_slice(self.cache.table.keys() | book.owned.keys(), interval,
                                                       time.monotonic())
        audited: list[ServiceKey] = []
        if not changed and not self._read:  # an event is written alone, never behind an audit chunk's reads
            audited, self._audit_queue = self._audit_queue[:AUDIT_CHUNK], self._audit_queue[AUDIT_CHUNK:]
        read, self._read = self._read, set()
        targeted: TargetedReport = await self._ipvs.call(functools.partial(
            reconcile_services, self.cache.table, self.kernel, self.backend, book, self.clock.now(),
            self.cache.drain_timeouts, changed, audited, read))
        for key, svc in targeted.services.items():
            if svc is None:
                self.kernel.pop(key, None)
            else:
                self.kernel[key] = svc
        changes, errors = list(targeted.changes) + list(targeted.repairs), list(targeted.errors)
        if audit_due:
            settings, problems = await self._ipvs.call(settings_pass, config, self.backend, self._sysctl)
            changes += settings
            errors += problems
            self._next_audit = time.monotonic() + interval
        self._count_audit(targeted)
        return PassReport(changes=changes, waiting=targeted.waiting, errors=errors, desired=self.cache.table,
                          kernel=self.kernel, services=len(self.cache.table))

    def _count_audit(self, targeted: TargetedReport) -> None:
        progress = self.audit.progress
        if targeted.repairs:
            progress.repairs_total += len(targeted.repairs)
            progress.last_repairs = [change.describe() for change in targeted.repairs][-20:]
            for change in targeted.repairs:
                log.warning("audit repaired " + change.action, entry=change.entry, **_field_values(change.fields))
        if targeted.audit_errors:
            progress.errors_total += len(targeted.audit_errors)
            progress.last_errors = targeted.audit_errors[-20:]
            for line in targeted.audit_errors:
                log.error("audit could not read a service", error=line)
        if targeted.reread:
            self.counters.rereads += len(targeted.reread)

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

    def _update_quorum(self, desired_services: DesiredTable) -> None:
        for desired in desired_services.values():
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
