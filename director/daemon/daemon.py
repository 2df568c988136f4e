"""`directord run`: the asyncio process wiring config, health checks, VRRP and the kernel.

The daemon owns no policy of its own; it builds its parts and runs them in order:
the health bridge (`director.daemon.health`) turns verdicts into real-server states,
the reconcile loop (`director.daemon.reconcile_loop`) turns those and the admin
drains into kernel writes and feeds quorum to VRRP, the sync role
(`director.daemon.sync_role`) follows VRRP state, the control API
(`director.daemon.control_api`) answers the control socket, and the views
(`director.daemon.views`) build status and /metrics from the same state. Blocking
netlink work runs on one worker thread; VRRP runs in a child process
(`director.daemon.vrrp_child`) so that no load here can delay an advert; the scripts and
files it tracks are run and read here (`director.daemon.trackers`) and only their changes
are sent to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time

import structlog

from director.config.host_tracking import script_security_problems
from director.config.load import ConfigError, explain, load_config
from director.config.model import Config
from director.daemon import web_api
from director.daemon.config_watch import ConfigWatch
from director.daemon.control import ControlServer
from director.daemon.control_api import ControlApi
from director.daemon.health import HealthBridge
from director.daemon.ipvs_thread import IpvsThread
from director.daemon.mail_alerts import MailAlerts
from director.daemon.mailer import Mailer
from director.daemon.metrics import MetricsServer
from director.daemon.pool_hooks import PoolHooks, both
from director.daemon.reconcile_loop import ReconcileLoop
from director.daemon.sdnotify import Notifier
from director.daemon.state_store import StateError, StateStore
from director.daemon.sync_role import SyncRole
from director.daemon.trackers import Trackers
from director.daemon.views import Views
from director.daemon.vrrp_child import VrrpProcess, VrrpProcessError
from director.hook_env import SAFE_PATH
from director.ipvs.model import IpvsBackend

log = structlog.get_logger("directord")


class MetricsUnavailable(RuntimeError):
    """metrics_listen cannot be bound."""


class Daemon:
    """Builds the parts, starts them in order and stops them in reverse; owns the
    signals, the sockets, sd_notify and reloads."""

    def __init__(self, config: Config, backend: IpvsBackend | None, state_dir: str | None = None,
                 vrrp: VrrpProcess | None = None) -> None:
        """`vrrp` is the child forked (before any event loop) for the config's VRRP instances."""
        self.backend = backend
        self.vrrp = vrrp
        self.notifier = Notifier()
        self.stop = asyncio.Event()
        self.ipvs = IpvsThread()
        wake = asyncio.Event()  # set by whatever needs a reconcile pass now
        self.health = HealthBridge(on_change=wake.set, now=lambda: self.reconciler.clock.now())
        self.reconciler = ReconcileLoop(config, backend, self.ipvs, StateStore(state_dir or config.global_.state_dir),
                                        self.health, vrrp, wake, on_pass=self._passed)
        # tracked scripts and files: run here, their changes sent to the VRRP child
        self.trackers = Trackers(send=vrrp.set_tracker if vrrp is not None else lambda message: None)
        self.mailer = Mailer(lambda: self.config.global_)
        self.alerts = MailAlerts(self.mailer, lambda: self.config, self.reconciler.real_server_states,
                                 self._check_failures, vrrp.snapshot if vrrp else None)
        self.hooks = PoolHooks(lambda: self.config, self.reconciler.real_server_states)
        self.health.on_verdict = both(self.alerts.on_real_server, self.hooks.on_real_server)
        self.reconciler.on_quorum = both(self.alerts.on_quorum, self.hooks.on_quorum)
        self.views = Views(self.reconciler, self.health, vrrp, trackers=self.trackers, mailer=self.mailer)
        self.sync_role = SyncRole(backend, self.ipvs, lambda: self.config.ipvs.sync_daemon,
                                  lambda: self.reconciler.kernel, vrrp.snapshot, self.stop) if vrrp else None
        self.control_api = ControlApi(self.reconciler, vrrp, reload=self.reload, status=self.views.status)
        self.control: ControlServer | None = None
        self.metrics_server: MetricsServer | None = None
        self.watch: ConfigWatch | None = None  # [global] auto_reload
        self._loop: asyncio.AbstractEventLoop | None = None
        self._auto_reloads: set[asyncio.Task] = set()

    @property
    def config(self) -> Config:
        """The config the daemon runs (the reconcile loop holds it with its generation)."""
        return self.reconciler.config

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> int:
        loop = self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop_signal)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        await self._open_sockets()
        vrrp_stop = asyncio.Event()
        reconciler, tasks = await self._start_parts(loop, vrrp_stop)
        log.info("started", config=self.config.path, virtual_servers=len(self.config.virtual_servers),
                 vrrp_instances=len(self.config.vrrp_instances))
        self.notifier.ready(self.views.summary())
        self._follow_auto_reload()
        watchdog = loop.create_task(self._watchdog(self.notifier.watchdog_interval)) \
            if self.notifier.watchdog_interval else None
        stopper = loop.create_task(self.stop.wait())
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        log.info("stopping", reason="a component failed" if failed else "signal")
        self.notifier.stopping()
        vrrp_stop.set()  # masters send priority 0 and drop their VIPs
        for task in (watchdog, reconciler):
            if task is not None:
                task.cancel()
        await self._shutdown(tasks)
        for task in failed:
            log.error("component failed", error=repr(task.exception()))
        return 2 if failed else 0

    async def _open_sockets(self) -> None:
        self.control = ControlServer(self.config.global_.control_socket, self.control_api.handlers())
        await self.control.start()  # first: a second daemon on the same socket stops here
        self.views.connections["control"] = self.control.gate
        try:
            self.reconciler.store.lock()  # then one with its own socket but this state_dir
            await self._start_metrics()
        except (MetricsUnavailable, StateError):
            self.reconciler.store.unlock()
            await self.control.close()
            raise

    async def _start_parts(self, loop: asyncio.AbstractEventLoop,
                           vrrp_stop: asyncio.Event) -> tuple[asyncio.Task | None, list[asyncio.Task]]:
        """Health checks and the reconcile loop (with a kernel), then VRRP; the reconcile
        task and every task whose end stops the daemon."""
        tasks: list[asyncio.Task] = []
        reconciler: asyncio.Task | None = None
        self.mailer.start()  # not among `tasks`: mail failing never stops the daemon
        if self.backend is not None:
            self.health.start(self.config, await self.ipvs.call(self.backend.dump))
            reconciler = loop.create_task(self.reconciler.run())
            tasks.append(reconciler)
        if self.vrrp is not None:
            listeners = [self.sync_role.on_transition] if self.sync_role is not None else []  # always, with VRRP
            self.vrrp.on_transition = both(*listeners, self.alerts.on_vrrp_transition)
            self.trackers.start(self.config)  # first states reach the child right after its start
            tasks.append(loop.create_task(self.vrrp.run(vrrp_stop)))
        return reconciler, tasks

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

    def _check_failures(self, key: tuple[str, str]) -> int | None:
        status = self.health.check_status(key)
        return status.failures if status is not None else None

    def _passed(self) -> None:
        """After each reconcile pass: `systemctl status` shows what is in now."""
        self.notifier.status(self.views.summary())

    async def _start_metrics(self) -> None:
        listen = self.config.global_.metrics_listen
        if not listen:
            return
        self.metrics_server = MetricsServer(listen, self.views.exposition, documents=web_api.documents(self.views))
        self.views.connections["metrics"] = self.metrics_server.gate
        try:
            await self.metrics_server.start()
        except OSError as exc:
            raise MetricsUnavailable(f"cannot serve metrics on {listen}: {exc.strerror or exc}") from exc
        log.info("serving metrics", listen=listen)

    async def _shutdown(self, tasks: list[asyncio.Task]) -> None:
        if self.watch is not None:
            self.watch.close()
        if self.metrics_server is not None:
            await self.metrics_server.close()
        if self.control is not None:
            await self.control.close()
        await self.health.close()
        await self.hooks.close()  # with omega, the down hooks of what was still up
        await self.trackers.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.mailer.close()  # after VRRP: the instances' last transitions are queued by now
        if self.sync_role is not None:  # a master that handed its VIPs over is flushing
            await self.sync_role.finish()
        if self.backend is not None:
            await self.reconciler.stop()
        self.ipvs.shutdown()
        self.reconciler.store.unlock()
        log.info("stopped")

    # --- reload ----------------------------------------------------------------------------

    async def reload(self) -> list[str]:
        """Re-read the config; on any error keep running the old one and return the problems."""
        self.notifier.reloading()
        try:
            return await self._reload()
        finally:
            self.notifier.ready(self.views.summary())

    async def _reload(self) -> list[str]:
        path = self.config.path
        try:
            began = time.monotonic()
            new = await asyncio.get_running_loop().run_in_executor(None, load_config, path)
            self.reconciler.last_load_seconds = time.monotonic() - began
        except ConfigError as exc:
            for line in exc.lines:
                log.error("reload rejected, keeping the running config", problem=line)
            return exc.lines
        refused = explain(path, script_security_problems(new, SAFE_PATH))
        for line in refused:
            log.error("reload rejected, keeping the running config", problem=line)
        if refused:
            return refused
        if new.vrrp_instances != self.config.vrrp_instances:
            try:
                new = await self._reconfigure_vrrp(new)
            except VrrpProcessError as exc:
                log.error("reload rejected, keeping the running config", problem=str(exc))
                return [f"{path}: vrrp_instance: {exc}"]
        if self.backend is None and new.virtual_servers:
            log.warning("reload: virtual servers added to a VRRP-only daemon take effect at the next restart")
        self.reconciler.reload(new)
        self.health.reload(new)
        if self.vrrp is not None:
            self.trackers.reload(new)
        self.reconciler.poke()
        self._follow_auto_reload()
        self.views.reloaded = time.time()
        log.info("reloaded", config=path, virtual_servers=len(new.virtual_servers))
        return []

    def _follow_auto_reload(self) -> None:
        """Watch the config file while `[global] auto_reload` says so."""
        wanted = self.config.global_.auto_reload
        if self.watch is not None and wanted and self.watch.fragment_dirs != ConfigWatch.dirs_of(self.config.fragments):
            self.watch.close()  # include brought in files from other directories: watch those
            self.watch = None
        if wanted and self.watch is None:
            watch = ConfigWatch(self.config.path, self._auto_reload, fragments=self.config.fragments)
            try:
                watch.start()
            except OSError as exc:
                log.error("cannot watch the config, auto_reload is off", config=self.config.path,
                          error=exc.strerror or str(exc))
                return
            self.watch = watch
        elif not wanted and self.watch is not None:
            self.watch.close()
            self.watch = None

    def _auto_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._auto_reloads.add(task)
        task.add_done_callback(self._auto_reloads.discard)

    async def _reconfigure_vrrp(self, new: Config) -> Config:
        """Hand changed VRRP instances to the child (unchanged ones keep their state); the
        config to run. A daemon started without VRRP keeps running without it."""
        if self.vrrp is not None:
            await self.vrrp.reconfigure(new.vrrp_instances)
            return new
        log.warning("reload: VRRP instances added to a daemon started without any take effect at restart")
        return dataclasses.replace(new, vrrp_instances=())
