"""The views: status, /metrics and the systemd status line read the same live state."""

from __future__ import annotations

import asyncio
import time
import tomllib
from pathlib import Path
from typing import Any

from director.config.load import parse_config
from director.daemon.health import HealthBridge, state_keys
from director.daemon.ipvs_thread import IpvsThread
from director.daemon.reconcile_loop import ReconcileLoop
from director.daemon.state_store import AdminDrain, StateStore
from director.daemon.views import Views
from director.ipvs.memory import MemoryIpvs
from director.reconcile.desired import RealServerState

CONFIG = """
[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
  [[virtual_server.real_server]]
  address = "10.0.0.11"
  [[virtual_server.real_server]]
  address = "10.0.0.12"
"""


class SnapshotVrrp:
    def snapshot(self) -> dict[str, Any]:
        return {"instances": {"VI_1": {"state": "master"}}}

    async def fresh_snapshot(self) -> dict[str, Any]:
        return {"instances": {"VI_1": {"state": "master"}}}


def views_for(tmp_path: Path, backend: MemoryIpvs | None, vrrp: Any) -> tuple[Views, ReconcileLoop]:
    cfg = parse_config(tomllib.loads(CONFIG))
    health = HealthBridge(on_change=lambda: None, now=time.time)
    health.keys = state_keys(cfg)
    health.states = {skey: RealServerState() for skey in health.keys.values()}
    loop = ReconcileLoop(cfg, backend, IpvsThread(), StateStore(str(tmp_path)), health, None, asyncio.Event(),
                         on_pass=lambda: None)
    return Views(loop, health, vrrp), loop


def test_the_status_line_counts_what_is_in(tmp_path: Path) -> None:
    views, loop = views_for(tmp_path, MemoryIpvs(), SnapshotVrrp())
    assert views.summary() == "VI_1 master; 1 service, 2/2 real servers in"
    loop.state.admin_drains.append(AdminDrain("10.0.0.12"))
    assert views.summary() == "VI_1 master; 1 service, 1/2 real servers in"
    vrrp_only, _ = views_for(tmp_path, None, SnapshotVrrp())
    assert vrrp_only.summary() == "VI_1 master"


def test_status_and_metrics_show_the_same_drain(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], str]:
        views, loop = views_for(tmp_path, MemoryIpvs(), None)
        loop.state.admin_drains.append(AdminDrain("10.0.0.12"))
        loop.drains_changed()  # as the control API does after each drain
        return await views.status(), "".join([chunk async for chunk in await views.exposition()])

    status, body = asyncio.run(go())
    assert [rs["drained"] for rs in status["virtual_servers"][0]["real_servers"]] == [False, True]
    assert status["vrrp"] == {} and status["reloaded"] is None
    assert 'directord_real_server_drained{virtual_server="web",address="10.0.0.12",port="80"} 1' in body
    assert 'directord_real_server_drained{virtual_server="web",address="10.0.0.11",port="80"} 0' in body
