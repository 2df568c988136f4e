"""`directord run`: the asyncio process wiring config, health checks, VRRP and the kernel.

The daemon owns no policy of its own: health verdicts and admin drains become
real-server states, `director.reconcile.apply.reconcile_pass` turns them into kernel
writes, quorum feeds VRRP tracking, and VRRP state decides the sync daemon's
role. Blocking netlink work runs on one worker thread; VRRP runs in a child
process (`director.daemon.vrrp_child`) so that no load here can delay an advert.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from director.config.load import ConfigError, load_config
from director.config.model import Config
from director.daemon import metrics
from director.daemon.control import ControlError, ControlServer
from director.daemon.metrics import CHECK_BUCKETS, RECONCILE_BUCKETS, Histogram, reason_class
from director.daemon.sdnotify import Notifier
from director.daemon.state_store import AdminDrain, StateError, StateStore, admin_drain_states
from director.daemon.status import ReconcileCounters, daemon_status, service_status
from director.daemon.vrrp_child import VrrpProcess, VrrpProcessError
from director.ipvs.model import SYNC_RECEIVE_ANY_SIZE, DeleteService, IpvsBackend, KernelTable, SyncDaemon
from director.ipvs.sysctl import IpvsSysctl
from director.reconcile.apply import PassReport, reconcile_pass
from director.reconcile.desired import DesiredTable, RealServerState, StateKey, dest_key, service_key
from director.sync.flush import flush as flush_connections
from director.sync.follow import SyncFollower

log = structlog.get_logger("directord")

class MetricsUnavailable(RuntimeError):
    """metrics_listen cannot be bound."""


HealthKey = tuple[str, str]  # (virtual server name, real server endpoint), the scheduler's key
RAMP_STEP = 1.0  # seconds between reconcile passes while a slow start ramps
RELOAD_APPLY_WAIT = 20.0  # seconds a reload request waits for the pass that applies it
HANDOVER_FLUSH_AGAIN = 0.25  # s: a second flush catches connections opened by packets in flight to us
SNAPSHOT_SLICE = 50  # virtual servers built per turn of the event loop


class Daemon:
    def __init__(self, config: Config, backend: IpvsBackend | None, state_dir: str | None = None,
                 vrrp: VrrpProcess | None = None) -> None:
        """`vrrp` is the child forked (before any event loop) for the config's VRRP instances."""
        self.config = config
        self.backend = backend
        self.store = StateStore(state_dir or config.global_.state_dir)
        self.state = self.store.load()
        self.health: dict[StateKey, RealServerState] = {}
        self.health_keys: dict[HealthKey, StateKey] = {}
        self.initial_up: set[HealthKey] = set()
        self.quorum_ok: dict[str, bool] = {}
        self.sync = SyncFollower.starting(time.monotonic())
        self._sync_timer: asyncio.TimerHandle | None = None
        self._sync_task: asyncio.Task | None = None
        self._handover_task: asyncio.Task | None = None
        self.scheduler: Any = None
        self.vrrp = vrrp
        self.started = time.time()
        self.reloaded: float | None = None
        self.kernel: KernelTable | None = None
        self.desired: DesiredTable | None = None
        self.counters = ReconcileCounters()
        self.check_histograms: dict[tuple[str, int, str], Histogram] = {}
        self.check_failures: collections.Counter[tuple[str, int, str, str]] = collections.Counter()
        self.reconcile_histogram = Histogram(RECONCILE_BUCKETS)
        self.metrics_server: Any = None
        self.metric_labels = metrics.LabelCache()
        self.control: ControlServer | None = None
        self.notifier = Notifier()
        self.stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dirty = asyncio.Event()
        self.generation = 0  # bumped by each reload; a pass applies the generation it started with
        self._applied: list[tuple[int, asyncio.Future[PassReport]]] = []
        self.ipvs_thread = ThreadPoolExecutor(1, thread_name_prefix="ipvs")
        self.sysctl = IpvsSysctl() if backend is not None else None

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> int:
        loop = self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop_signal)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        self.control = ControlServer(self.config.global_.control_socket, self._control_handlers())
        await self.control.start()  # first: a second daemon on the same socket stops here
        try:
            await self._start_metrics()
        except MetricsUnavailable:
            await self.control.close()
            raise
        tasks: list[asyncio.Task] = []
        vrrp_stop = asyncio.Event()
        reconciler: asyncio.Task | None = None
        if self.backend is not None:
            await self._start_health_checks()
            reconciler = loop.create_task(self._reconcile_loop())
            tasks.append(reconciler)
        if self.vrrp is not None:
            self.vrrp.on_transition = self._on_vrrp_transition
            tasks.append(loop.create_task(self.vrrp.run(vrrp_stop)))
        log.info("started", config=self.config.path, virtual_servers=len(self.config.virtual_servers),
                 vrrp_instances=len(self.config.vrrp_instances))
        self.notifier.ready(self._summary())
        watchdog = loop.create_task(self._watchdog(self.notifier.watchdog_interval)) \
            if self.notifier.watchdog_interval else None
        stopper = loop.create_task(self.stop.wait())
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        log.info("stopping", reason="a component failed" if failed else "signal")
        self.notifier.stopping()
        vrrp_stop.set()  # masters send priority 0 and drop their VIPs
        if watchdog is not None:
            watchdog.cancel()
        if reconciler is not None:
            reconciler.cancel()
        await self._shutdown(tasks)
        for task in failed:
            log.error("component failed", error=repr(task.exception()))
        return 2 if failed else 0

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        """A plain signal handler, not the loop's: it runs at the next bytecode even while a
        check batch or a reconcile pass holds the loop, so the VRRP child hears at once and
        masters send priority 0 now (the backup takes over that much sooner)."""
        if self.vrrp is not None:
            self.vrrp.stop_now()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._loop.call_soon_threadsafe(self.stop.set)

    async def _watchdog(self, interval: float) -> None:
        """Pinged from the event loop itself, and only while the VRRP child answers too:
        a stuck loop or a wedged child stops the pings and systemd restarts us."""
        while True:
            if self.vrrp is None or await self.vrrp.ping():
                self.notifier.watchdog()
            else:
                log.error("VRRP process not answering, withholding the watchdog ping", pid=self.vrrp.pid)
            await asyncio.sleep(interval)

    def _summary(self) -> str:
        """One line for `systemctl status`."""
        parts = []
        if self.vrrp is not None:
            states = [f"{name} {vi['state']}" for name, vi in self.vrrp.snapshot()["instances"].items()]
            parts.append(", ".join(states) or "VRRP starting")
        if self.backend is not None:
            up = sum(1 for state in self.real_server_states().values() if state.up and not state.admin_drained)
            parts.append(f"{len(self.config.virtual_servers)} services, {up}/{len(self.health)} real servers in")
        return "; ".join(parts)

    async def _start_metrics(self) -> None:
        listen = self.config.global_.metrics_listen
        if not listen:
            return
        self.metrics_server = metrics.MetricsServer(listen, self._exposition)
        try:
            await self.metrics_server.start()
        except OSError as exc:
            raise MetricsUnavailable(f"cannot serve metrics on {listen}: {exc.strerror or exc}") from exc
        log.info("serving metrics", listen=listen)

    async def _exposition(self) -> Any:
        vrrp = await self.vrrp.fresh_snapshot() if self.vrrp is not None else None
        return metrics.render(metrics.Sources(
            config=self.config, kernel=self.kernel or {}, desired=self.desired or {},
            states=self.real_server_states(), vrrp=vrrp, reconcile=self.counters,
            histograms=dict(self.check_histograms), failures=dict(self.check_failures),
            reconcile_histogram=self.reconcile_histogram), self.metric_labels)

    async def _shutdown(self, tasks: list[asyncio.Task]) -> None:
        if self.metrics_server is not None:
            await self.metrics_server.close()
        if self.control is not None:
            await self.control.close()
        if self.scheduler is not None:
            await self.scheduler.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._handover_task is not None:  # a master that handed its VIPs over is flushing
            await asyncio.gather(self._handover_task, return_exceptions=True)
        if self.backend is not None:
            if self.config.ipvs.on_stop == "remove":
                await self._in_ipvs_thread(self._remove_owned)
            await self._in_ipvs_thread(self._persist)
            self.backend.close()  # by default the IPVS table stays as it is: a restart drops nothing
        self.ipvs_thread.shutdown(wait=True)
        log.info("stopped")

    async def reload(self) -> list[str]:
        """Re-read the config; on any error keep running the old one and return the problems."""
        self.notifier.reloading()
        try:
            return await self._reload()
        finally:
            self.notifier.ready(self._summary())

    async def _reload(self) -> list[str]:
        path = self.config.path
        try:
            new = await asyncio.get_running_loop().run_in_executor(None, load_config, path)
        except ConfigError as exc:
            for line in exc.lines:
                log.error("reload rejected, keeping the running config", problem=line)
            return exc.lines
        if new.vrrp_instances != self.config.vrrp_instances:
            if self.vrrp is not None:
                try:
                    await self.vrrp.reconfigure(new.vrrp_instances)  # unchanged instances keep their state
                except VrrpProcessError as exc:
                    log.error("reload rejected, keeping the running config", problem=str(exc))
                    return [f"{path}: vrrp_instance: {exc}"]
            else:
                log.warning("reload: VRRP instances added to a daemon started without any take effect at restart")
                new = dataclasses.replace(new, vrrp_instances=())
        if self.backend is None and new.virtual_servers:
            log.warning("reload: virtual servers added to a VRRP-only daemon take effect at the next restart")
        self.config = new
        self.generation += 1
        if self.scheduler is not None:
            self._sync_health_checks()
        self.dirty.set()
        self.reloaded = time.time()
        log.info("reloaded", config=path, virtual_servers=len(new.virtual_servers))
        return []

    # --- health checks -------------------------------------------------------------------------

    async def _start_health_checks(self) -> None:
        from healthcheck import Scheduler

        kernel = await self._in_ipvs_thread(self.backend.dump)
        # A restart must not take servers out: what the kernel already serves with a
        # weight starts "up" and stays so until its checks fail `fall` times.
        for vs in self.config.virtual_servers:
            have = kernel.get(service_key(vs))
            for rs in vs.real_servers:
                dest = have.dests.get(dest_key(rs)) if have else None
                if dest is not None and dest.spec.weight > 0:
                    self.initial_up.add((vs.name, rs.endpoint))
        self.scheduler = Scheduler(self._on_health, on_weight=self._on_weight, on_sample=self._observe_sample)
        self._sync_health_checks()

    def _sync_health_checks(self) -> None:
        from healthcheck import targets_from_config

        wanted = targets_from_config(self.config.virtual_servers)
        keys: dict[HealthKey, StateKey] = {}
        for vs in self.config.virtual_servers:
            for rs in vs.real_servers:
                keys[(vs.name, rs.endpoint)] = (vs.name, dest_key(rs))
        for hkey, (target, check) in list(wanted.items()):
            if hkey in self.initial_up and check.initial != "up":
                wanted[hkey] = (target, dataclasses.replace(check, initial="up"))
        self.scheduler.sync(wanted)
        for hkey, skey in keys.items():
            if skey not in self.health:
                status = self.scheduler.snapshot(hkey)
                up = status.up if status is not None else True
                self.health[skey] = RealServerState(up=up, up_since=None)
        for skey in set(self.health) - set(keys.values()):
            del self.health[skey]
        self.health_keys = keys
        probed = {(target.address, target.port, check.type) for target, check in wanted.values()}
        for key in set(self.check_histograms) - probed:
            del self.check_histograms[key]
        for key in [k for k in self.check_failures if k[:3] not in probed]:
            del self.check_failures[key]

    def _observe_sample(self, target: Any, check: Any, result: Any) -> None:
        """Every sample feeds the check-duration histogram and the failure counters."""
        key = (target.address, target.port, check.type)
        histogram = self.check_histograms.get(key)
        if histogram is None:
            histogram = self.check_histograms[key] = Histogram(CHECK_BUCKETS)
        histogram.observe(result.latency)
        if not result.ok:
            self.check_failures[(*key, reason_class(result.reason))] += 1

    def _on_health(self, hkey: HealthKey, up: bool, result: Any) -> None:
        skey = self.health_keys.get(hkey)
        if skey is None:
            return
        old = self.health.get(skey, RealServerState())
        self.health[skey] = dataclasses.replace(old, up=up, up_since=time.time() if up else None)
        log.info("real server up" if up else "real server down", virtual_server=hkey[0],
                 real_server=hkey[1], reason=result.reason, latency_ms=round(result.latency * 1000, 1))
        self.dirty.set()

    def _on_weight(self, hkey: HealthKey, weight: int | None, result: Any) -> None:
        skey = self.health_keys.get(hkey)
        if skey is None:
            return
        self.health[skey] = dataclasses.replace(self.health.get(skey, RealServerState()), dynamic_weight=weight)
        log.info("dynamic weight", virtual_server=hkey[0], real_server=hkey[1], weight=weight)
        self.dirty.set()

    # --- the kernel ------------------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        while True:
            await self._reconcile()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.dirty.wait(), timeout=self._next_pass_in())
            self.dirty.clear()

    def _next_pass_in(self) -> float:
        interval = self.config.global_.reconcile_interval
        slow = {vs.name: vs.slow_start for vs in self.config.virtual_servers if vs.slow_start}
        now = time.time()
        for (name, _), state in self.health.items() if slow else ():
            if name in slow and state.up_since and now - state.up_since < slow[name]:
                return min(interval, RAMP_STEP)
        return interval

    def real_server_states(self) -> dict[StateKey, RealServerState]:
        drained = admin_drain_states(self.config, self.state.admin_drains)
        return {key: (dataclasses.replace(state, admin_drained=True) if key in drained else state)
                for key, state in self.health.items()}

    async def _reconcile(self) -> None:
        config, states, generation = self.config, self.real_server_states(), self.generation
        began = time.monotonic()
        try:
            report = await self._in_ipvs_thread(functools.partial(
                reconcile_pass, config, self.backend, self.state.book, time.time(), states, sysctl=self.sysctl))
            # Status and metrics read the table as it is after this pass's writes.
            self.kernel = report.kernel if not report.changes else await self._in_ipvs_thread(self.backend.dump)
        except OSError as exc:
            log.error("reconcile pass failed", error=str(exc))
            self.counters.errors_total += 1
            self.counters.last_errors = [f"reconcile pass failed: {exc}"]
            return
        self.desired = report.desired
        self._count(report, time.monotonic() - began)
        self._tell_waiters(generation, report)
        self.notifier.status(self._summary())
        for change in report.changes:
            log.info("ipvs " + change.action, entry=change.entry,
                     fields={k: [a, b] for k, (a, b) in change.fields.items()})
        for line in report.errors:
            log.error("ipvs operation failed", error=line)
        if report.changes:
            await self._in_ipvs_thread(self._persist)
        self._update_quorum(report)

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

    def _count(self, report: PassReport, duration: float) -> None:
        counters = self.counters
        counters.passes += 1
        counters.last_pass_at = time.time()
        counters.last_duration = duration
        self.reconcile_histogram.observe(duration)
        for change in report.changes:
            counters.operations[change.action] = counters.operations.get(change.action, 0) + 1
        counters.errors_total += len(report.errors)
        counters.last_errors = list(report.errors)

    def _remove_owned(self) -> None:
        """`[ipvs] on_stop = "remove"`: delete the services this daemon put in the kernel
        (never ones made by hand or by others) and stop its sync thread."""
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

    def _persist(self) -> None:
        try:
            self.store.save(self.state)
        except StateError as exc:
            log.error("cannot save state", error=str(exc))

    def _update_quorum(self, report: PassReport) -> None:
        for desired in report.desired.values():
            ok = not desired.quorum_lost
            if self.quorum_ok.get(desired.name) != ok:
                self.quorum_ok[desired.name] = ok
                log.info("quorum " + ("reached" if ok else "lost"), virtual_server=desired.name)
                if self.vrrp is not None:
                    with contextlib.suppress(VrrpProcessError):  # only while stopping
                        self.vrrp.set_tracked_virtual_server(desired.name, ok)

    async def _in_ipvs_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.ipvs_thread, fn, *args)

    # --- the control socket -----------------------------------------------------------------------

    def _control_handlers(self) -> dict[str, Any]:
        return {"status": self._status, "reload": self._reload_request, "drain": self._drain,
                "undrain": self._undrain, "failover": self._failover}

    async def snapshot(self) -> dict[str, Any]:
        """The status snapshot, built on the event loop a slice of services at a time so
        that status and /metrics at 10k real servers never delay a VRRP advert."""
        config, kernel, desired = self.config, self.kernel or {}, self.desired or {}
        health = self.real_server_states()
        lookup = self.scheduler.snapshot if self.scheduler is not None else (lambda key: None)
        services = []
        for index, vs in enumerate(config.virtual_servers):
            services.append(service_status(vs, health, lookup, kernel, desired))
            if index % SNAPSHOT_SLICE == SNAPSHOT_SLICE - 1:
                await asyncio.sleep(0)
        return daemon_status(config, started=self.started, reloaded=self.reloaded,
                             vrrp=await self.vrrp.fresh_snapshot() if self.vrrp else None,
                             reconcile=self.counters,
                             services=services)

    async def _status(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self.snapshot()

    async def _reload_request(self, request: dict[str, Any]) -> dict[str, Any]:
        problems = await self.reload()
        if problems:
            raise ControlError("config rejected, still running the previous one:\n" + "\n".join(problems))
        answer: dict[str, Any] = {"reloaded": self.config.path}
        report = await self.applied(RELOAD_APPLY_WAIT)  # so the caller knows what the kernel got
        if report is not None:
            answer |= {"changes": [change.describe() for change in report.changes], "errors": report.errors}
        elif self.backend is not None:
            answer["pending"] = f"not yet applied to IPVS after {RELOAD_APPLY_WAIT:g}s; see directord status"
        return answer

    def _matching(self, drain: AdminDrain) -> list[str]:
        return [f"{rs.endpoint} in {vs.name}" for vs in self.config.virtual_servers for rs in vs.real_servers
                if drain.matches(vs.name, dest_key(rs))]

    def _drain_request(self, request: dict[str, Any]) -> AdminDrain:
        address, port, service = request.get("address"), request.get("port"), request.get("service")
        if not isinstance(address, str) or not (port is None or isinstance(port, int)) \
                or not (service is None or isinstance(service, str)):
            raise ControlError('drain needs "address" (string), optional "port" (int) and "service" (string)')
        if service is not None and self.config.virtual_server(service) is None:
            raise ControlError(f'no virtual_server is named "{service}"')
        return AdminDrain(address, port, service)

    async def _drain(self, request: dict[str, Any]) -> dict[str, Any]:
        drain = self._drain_request(request)
        matched = self._matching(drain)
        if not matched:
            raise ControlError(f"no configured real server matches {drain.address}"
                               + (f":{drain.port}" if drain.port else "")
                               + (f" in {drain.service}" if drain.service else ""))
        if drain not in self.state.admin_drains:
            self.state.admin_drains.append(drain)
            await self._in_ipvs_thread(self._persist)
        log.info("drained by admin", real_servers=matched)
        self.dirty.set()
        return {"drained": matched}

    async def _undrain(self, request: dict[str, Any]) -> dict[str, Any]:
        drain = self._drain_request(request)
        before = len(self.state.admin_drains)
        self.state.admin_drains = [d for d in self.state.admin_drains if d != drain]
        if len(self.state.admin_drains) == before:
            raise ControlError("no matching drain is in place (undrain takes the same arguments as drain)")
        await self._in_ipvs_thread(self._persist)
        log.info("undrained by admin", real_servers=self._matching(drain))
        self.dirty.set()
        return {"undrained": self._matching(drain)}

    async def _failover(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("instance")
        if self.vrrp is None:
            raise ControlError("no VRRP instances are configured")
        if not isinstance(name, str) or name not in self.vrrp.names:
            raise ControlError(f'no VRRP instance is named "{name}"')
        try:
            handed_over = await self.vrrp.failover(name)
        except VrrpProcessError as exc:
            raise ControlError(str(exc)) from exc
        if not handed_over:
            raise ControlError(f"{name} is not master here; nothing to hand over")
        log.info("failover requested by admin", instance=name)
        snapshot = await self.vrrp.fresh_snapshot()
        return {"instance": name, "state": snapshot["instances"][name]["state"]}

    # --- VRRP -> connection sync -------------------------------------------------------------------

    def _on_vrrp_transition(self, instance: str, state: str) -> None:
        """Connection sync follows VRRP, except while stopping: a stopping master's
        kernel keeps forwarding (and syncing) until the peer takes over. Leaving master,
        stopping or not, hands the newest connections over first."""
        if self.config.ipvs.sync_daemon is None or self.backend is None or self.vrrp is None:
            return
        states = {i["state"] for i in self.vrrp.snapshot()["instances"].values()}
        was_master = self.sync.master
        self.sync.set_master("master" in states, time.monotonic())
        if was_master and not self.sync.master:
            self._handover_task = asyncio.get_running_loop().create_task(self._hand_over_connections())
        if not self.stop.is_set():
            self._follow_sync()

    async def _hand_over_connections(self) -> None:
        """Re-send our newest connections to the peer now that traffic leaves us: the kernel
        would hold the last of them for seconds (see director.sync.wire). Twice, the second
        time for connections that packets already in flight to us opened."""
        for delay in (0.0, HANDOVER_FLUSH_AGAIN):
            await asyncio.sleep(delay)
            await self._in_ipvs_thread(self._flush_connections)

    def _flush_connections(self) -> None:
        sync = self.config.ipvs.sync_daemon
        assert sync is not None and self.backend is not None
        try:
            report = flush_connections(sync, self.kernel or self.backend.dump(), self.backend.get_timeouts())
        except OSError as exc:
            log.warning("connection handover to the peer failed", error=str(exc))
            return
        log.info("connections handed over to the peer", connections=report.connections, packets=report.packets)

    def _follow_sync(self) -> None:
        """Bring the kernel's sync threads to what `self.sync` wants now, and come back
        when that changes by itself."""
        loop = asyncio.get_running_loop()
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        if self.stop.is_set():
            return
        now = time.monotonic()
        self._sync_task = loop.create_task(self._in_ipvs_thread(self._set_sync_daemons, now))
        later = self.sync.next_change(now)
        if later is not None:
            self._sync_timer = loop.call_later(later - now + 0.01, self._follow_sync)

    def _set_sync_daemons(self, now: float) -> None:
        sync = self.config.ipvs.sync_daemon
        assert sync is not None and self.backend is not None
        try:
            running = {d.state for d in self.backend.sync_daemons()}
            start, stop = self.sync.plan(running, now)
            for state in stop:
                self.backend.stop_sync_daemon(state)  # type: ignore[arg-type]
            for state in start:
                self.backend.start_sync_daemon(SyncDaemon(
                    state=state, interface=sync.interface, syncid=sync.syncid,
                    max_packet_size=sync.max_packet_size if state == "master" else SYNC_RECEIVE_ANY_SIZE,
                    mcast_group=str(sync.mcast_group) if sync.mcast_group else "",
                    mcast_port=sync.mcast_port, mcast_ttl=sync.mcast_ttl))
            if start or stop:
                log.info("ipvs sync daemons", started=start, stopped=stop, interface=sync.interface,
                         syncid=sync.syncid)
        except OSError as exc:
            log.error("ipvs sync daemon change failed", error=str(exc))


