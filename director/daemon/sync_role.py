"""The IPVS connection-sync role, following VRRP.

`director.sync.follow.SyncFollower` decides which kernel sync threads should run
(the backup thread always, the master thread while any instance is master and for
a grace after); this part feeds it VRRP transitions, brings the kernel's threads to
its plan on the IPVS thread, comes back when the grace ends, and hands the newest
connections to the peer when this director leaves master. While the daemon stops,
thread changes wait: a stopping master's kernel keeps forwarding (and syncing)
until the peer takes over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from director.config.model import SyncDaemonConfig
from director.daemon.ipvs_thread import IpvsThread
from director.ipvs.model import SYNC_RECEIVE_ANY_SIZE, IpvsBackend, KernelTable, SyncDaemon, Timeouts
from director.sync.flush import FlushReport
from director.sync.flush import flush as flush_connections
from director.sync.follow import HANDOVER_GRACE, SyncFollower

log = structlog.get_logger("directord")

HANDOVER_FLUSH_AGAIN = 0.25  # s: a second flush catches connections opened by packets in flight to us
FlushFn = Callable[[SyncDaemonConfig, KernelTable, Timeouts], FlushReport]


def sync_daemon(sync: SyncDaemonConfig, state: str) -> SyncDaemon:
    """The kernel thread for `state`: a backup accepts packets of any size."""
    return SyncDaemon(
        state=state,  # type: ignore[arg-type]
        interface=sync.interface, syncid=sync.syncid,
        max_packet_size=sync.max_packet_size if state == "master" else SYNC_RECEIVE_ANY_SIZE,
        mcast_group=str(sync.mcast_group) if sync.mcast_group else "",
        mcast_port=sync.mcast_port, mcast_ttl=sync.mcast_ttl)


def any_master(vrrp_snapshot: Mapping[str, Any], instance: str | None = None) -> bool:
    """Whether `instance` (None: any VRRP instance) in the child's snapshot is master."""
    instances = vrrp_snapshot["instances"]
    if instance is not None:
        return instances.get(instance, {}).get("state") == "master"
    return any(vi["state"] == "master" for vi in instances.values())


class SyncRole:
    """`settings` and `table` read the running config's `[ipvs] sync_daemon` and the
    last table a reconcile pass left; `vrrp_snapshot` the VRRP child's last snapshot."""

    def __init__(self, backend: IpvsBackend | None, ipvs: IpvsThread,
                 settings: Callable[[], SyncDaemonConfig | None], table: Callable[[], KernelTable | None],
                 vrrp_snapshot: Callable[[], Mapping[str, Any]], stopping: asyncio.Event, *,
                 flush: FlushFn = flush_connections, grace: float = HANDOVER_GRACE) -> None:
        self.follower = SyncFollower.starting(time.monotonic(), grace)
        self.handover: asyncio.Task | None = None  # the flush after leaving master, while it runs
        self._backend = backend
        self._ipvs = ipvs
        self._settings = settings
        self._table = table
        self._vrrp_snapshot = vrrp_snapshot
        self._stopping = stopping
        self._flush_fn = flush
        self._grace = grace
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None

    def on_transition(self, instance: str, state: str) -> None:
        """A VRRP instance changed state (the snapshot already says so). Leaving master,
        stopping or not, hands the newest connections over first."""
        settings = self._settings()
        if settings is None or self._backend is None:
            return
        was_master = self.follower.master
        self.follower.set_master(any_master(self._vrrp_snapshot(), settings.instance), time.monotonic(), self._grace)
        if was_master and not self.follower.master:
            self.handover = asyncio.get_running_loop().create_task(self._hand_over())
        if not self._stopping.is_set():
            self._follow()

    async def finish(self) -> None:
        """Let a handover that is under way end (the daemon is stopping)."""
        if self.handover is not None:
            await asyncio.gather(self.handover, return_exceptions=True)

    async def _hand_over(self) -> None:
        """Re-send our newest connections to the peer now that traffic leaves us: the kernel
        would hold the last of them for seconds (see director.sync.wire). Twice, the second
        time for connections that packets already in flight to us opened."""
        for delay in (0.0, HANDOVER_FLUSH_AGAIN):
            await asyncio.sleep(delay)
            await self._ipvs.call(self._flush)

    def _flush(self) -> None:
        sync, backend = self._settings(), self._backend
        assert sync is not None and backend is not None
        try:
            report = self._flush_fn(sync, self._table() or backend.dump(), backend.get_timeouts())
        except OSError as exc:
            log.warning("connection handover to the peer failed", error=str(exc))
            return
        log.info("connections handed over to the peer", connections=report.connections, packets=report.packets)

    def _follow(self) -> None:
        """Bring the kernel's sync threads to what the follower wants now, and come back
        when that changes by itself."""
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stopping.is_set():
            return
        now = time.monotonic()
        self._task = loop.create_task(self._ipvs.call(self._set_threads, now))
        later = self.follower.next_change(now)
        if later is not None:
            self._timer = loop.call_later(later - now + 0.01, self._follow)

    def _set_threads(self, now: float) -> None:
        sync, backend = self._settings(), self._backend
        assert sync is not None and backend is not None
        try:
            running = {d.state for d in backend.sync_daemons()}
            start, stop = self.follower.plan(running, now)
            for state in stop:
                backend.stop_sync_daemon(state)  # type: ignore[arg-type]
            for state in start:
                backend.start_sync_daemon(sync_daemon(sync, state))
            if start or stop:
                log.info("ipvs sync daemons", started=start, stopped=stop, interface=sync.interface,
                         syncid=sync.syncid)
        except OSError as exc:
            log.error("ipvs sync daemon change failed", error=str(exc))
