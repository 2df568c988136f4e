"""What the daemon shows: the status snapshot, the /metrics exposition and the line for
`systemctl status`, all read from the same live state (the reconcile loop's table and
counters, the health bridge's states and samples, the VRRP child's snapshot), so what
an admin sees and what Prometheus scrapes never disagree.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from director.daemon import metrics
from director.daemon.connlimit import ConnectionGate
from director.daemon.health import HealthBridge
from director.daemon.mailer import Mailer
from director.daemon.reconcile_loop import ReconcileLoop
from director.daemon.shared import Shared
from director.daemon.status import daemon_status, service_status
from director.daemon.trackers import Trackers
from director.daemon.vrrp_child import VrrpProcess
from director.text import counted

SNAPSHOT_SLICE = 50  # virtual servers built per turn of the event loop
# /metrics asks the VRRP child for its counters at most this often, however many scrape:
# the child is real-time and its time belongs to adverts. Status still asks each time.
METRICS_SNAPSHOT_PERIOD = 1.0


class Views:
    def __init__(self, reconciler: ReconcileLoop, health: HealthBridge, vrrp: VrrpProcess | None,
                 snapshot_period: float = METRICS_SNAPSHOT_PERIOD, trackers: Trackers | None = None,
                 mailer: Mailer | None = None) -> None:
        self.started = time.time()
        self.reloaded: float | None = None  # wall time of the last accepted reload
        self._reconciler = reconciler
        self._health = health
        self._vrrp = vrrp
        self._trackers = trackers
        self._labels = metrics.LabelCache()
        self.vrrp_snapshot: Shared[dict[str, Any]] = Shared(self._fresh_vrrp, snapshot_period)
        self.connections: dict[str, ConnectionGate] = {}  # the daemon's servers, as /metrics shows them
        self._mailer = mailer

    async def _fresh_vrrp(self) -> dict[str, Any]:
        assert self._vrrp is not None
        return await self._vrrp.fresh_snapshot()

    async def status(self) -> dict[str, Any]:
        """The status snapshot, built on the event loop a slice of services at a time so
        that status and /metrics at many real servers never delay a VRRP advert."""
        return await self._status(await self._vrrp.fresh_snapshot() if self._vrrp else None)

    async def web_status(self) -> dict[str, Any]:
        """The status document for /api/v1/status: the VRRP counters come from the shared
        snapshot (refreshed at most once a period), so any number of HTTP clients costs the
        real-time child no more requests than one."""
        return await self._status(await self._shared_vrrp())

    def health_problem(self) -> str | None:
        """Why /healthz answers 503, or None when the daemon and its VRRP process are well."""
        return self._vrrp.problem() if self._vrrp is not None else None

    async def _shared_vrrp(self) -> dict[str, Any] | None:
        if self._vrrp is None:
            return None
        await self.vrrp_snapshot.get()  # counters refreshed at most once a period...
        return self._vrrp.snapshot()  # ...but a transition the child pushed since shows at once

    async def _status(self, vrrp: dict[str, Any] | None) -> dict[str, Any]:
        rec = self._reconciler
        config, kernel, desired = rec.config, rec.kernel or {}, rec.desired or {}
        states = rec.real_server_states()
        services = []
        for index, vs in enumerate(config.virtual_servers):
            services.append(service_status(vs, states, self._health.check_status, kernel, desired))
            if index % SNAPSHOT_SLICE == SNAPSHOT_SLICE - 1:
                await asyncio.sleep(0)
        status = daemon_status(config, started=self.started, reloaded=self.reloaded,
                               vrrp=vrrp,
                               reconcile=rec.counters, services=services,
                               trackers=self._trackers.status() if self._trackers else None)
        if self._mailer is not None and (self._mailer.enabled or self._mailer.outbox.counters.sent):
            status["mail"] = self._mailer.status()
        return status

    async def exposition(self) -> AsyncIterator[str]:
        """The /metrics body, chunk by chunk (see director.daemon.metrics.render)."""
        vrrp = await self._shared_vrrp()
        rec = self._reconciler
        return metrics.render(metrics.Sources(
            config=rec.config, kernel=rec.kernel or {}, desired=rec.desired or {},
            states=rec.states_view(), vrrp=vrrp, reconcile=rec.counters,
            histograms=dict(self._health.histograms), failures=dict(self._health.failures),
            reconcile_histogram=rec.histogram, connections=self.connections,
            trackers=self._trackers.status() if self._trackers else (),
            mail=self._mailer.outbox if self._mailer is not None and self._mailer.enabled else None), self._labels)

    def summary(self) -> str:
        """One line for `systemctl status`."""
        parts = []
        if self._vrrp is not None:
            states = [f"{name} {vi['state']}" for name, vi in self._vrrp.snapshot()["instances"].items()]
            parts.append(", ".join(states) or "VRRP starting")
        if self._reconciler.has_kernel:
            up = sum(1 for state in self._reconciler.real_server_states().values()
                     if state.up and not state.admin_drained)
            parts.append(f"{counted(len(self._reconciler.config.virtual_servers), 'service')}, "
                         f"{up}/{counted(len(self._health.states), 'real server')} in")
        return "; ".join(parts)
