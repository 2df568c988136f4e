"""The sync role's decisions, on the in-memory IPVS backend: which kernel sync threads
run as VRRP changes, the master thread's linger after leaving master, the handover
flush, and what a stopping daemon leaves alone."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from typing import Any

import pytest

from director.config.load import ConfigError, parse_config
from director.config.model import SyncDaemonConfig
from director.daemon.ipvs_thread import IpvsThread
from director.daemon.sync_role import HANDOVER_FLUSH_AGAIN, SyncRole, any_master, sync_daemon
from director.ipvs.memory import MemoryIpvs
from director.ipvs.model import SYNC_RECEIVE_ANY_SIZE, KernelTable, SyncDaemon, Timeouts
from director.sync.flush import FlushReport

SYNC = SyncDaemonConfig(interface="eth1", syncid=51, max_packet_size=100)
GRACE = 0.3  # the master thread's linger in these tests (the daemon's is HANDOVER_GRACE)


def snapshot(*states: str) -> dict[str, Any]:
    return {"instances": {f"VI_{n}": {"state": state} for n, state in enumerate(states, 1)}}


def test_the_kernel_threads_a_role_asks_for() -> None:
    assert sync_daemon(SYNC, "master") == SyncDaemon("master", "eth1", 51, 100, "", 8848, 1)
    assert sync_daemon(SYNC, "backup") == SyncDaemon("backup", "eth1", 51, SYNC_RECEIVE_ANY_SIZE, "", 8848, 1)
    group = SyncDaemonConfig(interface="eth1", mcast_group=ipaddress.ip_address("239.1.2.3"), mcast_port=9000,
                             mcast_ttl=3)
    assert sync_daemon(group, "backup").mcast_group == "239.1.2.3"
    assert (sync_daemon(group, "master").mcast_port, sync_daemon(group, "master").mcast_ttl) == (9000, 3)


def test_any_instance_master_makes_this_director_master() -> None:
    assert any_master(snapshot("backup", "master"))
    assert not any_master(snapshot("backup", "fault"))
    assert not any_master(snapshot())


def test_a_named_instance_alone_decides() -> None:
    assert any_master(snapshot("backup", "master"), "VI_2")
    assert not any_master(snapshot("master", "backup"), "VI_2")
    assert not any_master(snapshot("master"), "VI_9")  # gone from the snapshot: not master


def test_the_threads_follow_only_the_named_instance() -> None:
    async def go() -> None:
        rig = Rig(SyncDaemonConfig(interface="eth1", instance="VI_2"))
        rig.vrrp = snapshot("master", "backup")
        rig.role.on_transition("VI_1", "master")
        await until(lambda: rig.running() == {"backup"})
        await asyncio.sleep(0.05)
        assert rig.running() == {"backup"}  # VI_1's master is not this sync daemon's
        rig.vrrp = snapshot("master", "master")
        rig.role.on_transition("VI_2", "master")
        await until(lambda: rig.running() == {"master", "backup"})

    asyncio.run(go())


class Rig:
    """A SyncRole over MemoryIpvs with a hand-set VRRP snapshot and a recording flush."""

    def __init__(self, settings: SyncDaemonConfig | None = SYNC) -> None:
        self.backend = MemoryIpvs()
        self.vrrp = snapshot("backup")
        self.stopping = asyncio.Event()
        self.flushes: list[float] = []
        self.role = SyncRole(self.backend, IpvsThread(), lambda: settings, lambda: None, lambda: self.vrrp,
                             self.stopping, flush=self._flush, grace=GRACE)

    def _flush(self, sync: SyncDaemonConfig, kernel: KernelTable, timeouts: Timeouts) -> FlushReport:
        self.flushes.append(time.monotonic())
        return FlushReport(connections=0, packets=0)

    def become(self, state: str) -> None:
        self.vrrp = snapshot(state)
        self.role.on_transition("VI_1", state)

    def running(self) -> set[str]:
        return set(self.backend.daemons)


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_master_runs_both_threads_and_the_master_thread_lingers_after() -> None:
    async def go() -> None:
        rig = Rig()
        rig.become("master")
        await until(lambda: rig.running() == {"master", "backup"})
        assert rig.backend.daemons["master"].max_packet_size == 100
        left = time.monotonic()
        rig.become("backup")
        await until(lambda: len(rig.flushes) == 2)  # the handover, then once more for packets in flight
        assert rig.flushes[1] - rig.flushes[0] >= HANDOVER_FLUSH_AGAIN - 0.01
        assert "master" in rig.running()  # still sending what its buffer holds
        await until(lambda: rig.running() == {"backup"})
        assert time.monotonic() - left >= GRACE
        await rig.role.finish()

    asyncio.run(go())


def test_back_to_master_within_the_linger_keeps_the_thread() -> None:
    async def go() -> None:
        rig = Rig()
        rig.become("master")
        await until(lambda: rig.running() == {"master", "backup"})
        rig.become("backup")
        rig.become("master")
        await asyncio.sleep(GRACE + 0.1)
        assert rig.running() == {"master", "backup"} and rig.backend.writes == 2  # started once each
        await rig.role.finish()

    asyncio.run(go())


def test_a_stopping_master_hands_over_but_leaves_the_threads() -> None:
    async def go() -> None:
        rig = Rig()
        rig.become("master")
        await until(lambda: rig.running() == {"master", "backup"})
        rig.stopping.set()
        rig.become("backup")
        await rig.role.finish()
        assert len(rig.flushes) == 2
        await asyncio.sleep(GRACE + 0.1)
        assert rig.running() == {"master", "backup"}  # forwarding (and syncing) until the peer takes over

    asyncio.run(go())


def test_without_a_sync_daemon_configured_nothing_happens() -> None:
    async def go() -> None:
        rig = Rig(settings=None)
        rig.become("master")
        rig.become("backup")
        await asyncio.sleep(0.05)
        assert rig.running() == set() and rig.flushes == [] and rig.role.handover is None

    asyncio.run(go())


def test_the_named_instance_must_exist() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"ipvs": {"sync_daemon": {"interface": "eth1", "instance": "VI_9"}},
                      "vrrp_instance": [{"name": "VI_1", "interface": "eth0", "vrid": 1,
                                         "virtual_ips": ["192.0.2.1/24"]}]})
    assert 'ipvs.sync_daemon.instance: no vrrp_instance is named "VI_9"' in str(caught.value)
