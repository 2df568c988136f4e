"""Cost follows change, on real IPVS (issue 20), cross-checked with ipvsadm: a health
transition reaches the kernel without a dump, the rolling audit repairs a tamper made by
hand, a service the config does not own is never touched, and a write meeting an entry
deleted underneath is recovered by re-reading that one service (runs in the VM rig)."""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from director.config.load import parse_config
from director.config.model import Config
from director.daemon.health import HealthBridge, state_keys
from director.daemon.ipvs_thread import IpvsThread
from director.daemon.reconcile_loop import ReconcileLoop
from director.daemon.state_store import StateStore
from director.ipvs.kernel import NetlinkIpvs
from director.ipvs.model import DestKey, KernelTable, ServiceKey
from director.reconcile.desired import RealServerState
from tests.kernel_util import ipvsadm, rules

pytestmark = pytest.mark.kernel

SERVICES = 6


def config(interval: str = "200ms", period: str = "600ms") -> Config:
    text = f'[global]\nreconcile_interval = "{interval}"\naudit_period = "{period}"\n'
    for s in range(SERVICES):
        text += f'[[virtual_server]]\nname = "vs{s}"\naddress = "192.0.2.{s + 1}"\nport = 80\n'
        for r in (1, 2):
            text += f'[[virtual_server.real_server]]\naddress = "10.0.{s}.{r}"\nweight = 10\n'
    return parse_config(tomllib.loads(text))


class CountingIpvs(NetlinkIpvs):
    """The real backend, counting whole-table dumps and the services read one by one."""

    def __init__(self) -> None:
        super().__init__()
        self.dumps = 0
        self.read: list[ServiceKey] = []

    def dump(self) -> KernelTable:
        self.dumps += 1
        return super().dump()

    def dump_services(self, keys: Iterable[ServiceKey]):  # type: ignore[no-untyped-def]
        keys = list(keys)
        self.read += keys
        return super().dump_services(keys)


class Daemonish:
    """The reconcile loop as the daemon runs it, over the real kernel, with states set by hand."""

    def __init__(self, tmp_path: Path, cfg: Config | None = None) -> None:
        cfg = cfg or config()
        self.backend = CountingIpvs()
        self.health = HealthBridge(on_change=lambda: None, now=time.time)
        self.health.keys = state_keys(cfg)
        self.health.states = {skey: RealServerState() for skey in self.health.keys.values()}
        self.thread = IpvsThread()
        self.loop = ReconcileLoop(cfg, self.backend, self.thread, StateStore(str(tmp_path / "state")),
                                  self.health, None, asyncio.Event(), on_pass=lambda: None)
        RIGS.append(self)

    def close(self) -> None:
        """The IPVS thread's queued work ends before the next test flushes the table."""
        self.thread.shutdown()
        self.backend.close()

    def down(self, s: int, r: int) -> None:
        """What the health bridge does on a down verdict."""
        self.health.states[(f"vs{s}", DestKey(4, f"10.0.{s}.{r}", 80))] = RealServerState(up=False)
        self.loop.touch(f"vs{s}")


async def until(condition: Callable[[], object], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


RIGS: list[Daemonish] = []


@pytest.fixture(autouse=True)
def empty_table() -> Iterator[None]:
    ipvsadm("-C")  # the VM is throwaway; directord itself never flushes
    yield
    while RIGS:
        RIGS.pop().close()
    ipvsadm("-C")  # the next module expects the empty table it would find in a fresh VM


def test_a_health_transition_reaches_the_kernel_without_a_dump(tmp_path: Path) -> None:
    async def go() -> None:
        rig = Daemonish(tmp_path, config(interval="1h", period="1h"))  # no audit slice in the way
        running = asyncio.create_task(rig.loop.run())
        await until(lambda: rig.loop.counters.full_passes == 1)
        assert "-a -t 192.0.2.4:80 -r 10.0.3.1:80 -m -w 10" in rules()
        dumps, read = rig.backend.dumps, len(rig.backend.read)
        began = time.monotonic()
        rig.down(3, 1)
        await until(lambda: "-a -t 192.0.2.4:80 -r 10.0.3.1:80 -m -w 0" in rules())
        print(f"transition to ipvsadm: {(time.monotonic() - began) * 1000:.1f} ms")
        assert rig.backend.dumps == dumps and len(rig.backend.read) == read  # neither a dump nor a read
        assert rig.loop.counters.operations.get("change") == 1
        running.cancel()

    asyncio.run(go())


def test_the_audit_repairs_a_tamper_made_with_ipvsadm(tmp_path: Path) -> None:
    async def go() -> None:
        rig = Daemonish(tmp_path)
        running = asyncio.create_task(rig.loop.run())
        await until(lambda: rig.loop.counters.full_passes == 1)
        ipvsadm("-e", "-t", "192.0.2.2:80", "-r", "10.0.1.2:80", "-m", "-w", "77")  # tampered
        ipvsadm("-d", "-t", "192.0.2.5:80", "-r", "10.0.4.1:80")  # deleted by hand
        ipvsadm("-a", "-t", "192.0.2.6:80", "-r", "10.0.99.9:80", "-m", "-w", "5")  # added by hand, no traffic
        began, repairs = time.monotonic(), rig.loop.audit.progress.repairs_total
        await until(lambda: rig.loop.audit.progress.repairs_total - repairs >= 3)
        print(f"tamper repaired in {time.monotonic() - began:.2f} s (audit_period 0.6 s, tick 0.2 s)")
        table = rules()
        assert "-a -t 192.0.2.2:80 -r 10.0.1.2:80 -m -w 10" in table
        assert "-a -t 192.0.2.5:80 -r 10.0.4.1:80 -m -w 10" in table
        assert not any("10.0.99.9" in line for line in table)
        assert rig.backend.dumps == 1  # the start's full pass only: the audit read slices
        assert rig.loop.kernel == rig.backend.dump()  # the mirror agrees with the kernel again
        running.cancel()

    asyncio.run(go())


def test_a_service_the_config_does_not_own_is_never_touched(tmp_path: Path) -> None:
    async def go() -> None:
        ipvsadm("-A", "-t", "203.0.113.9:443", "-s", "rr")
        ipvsadm("-a", "-t", "203.0.113.9:443", "-r", "10.9.9.9:443", "-m", "-w", "3")
        rig = Daemonish(tmp_path)
        running = asyncio.create_task(rig.loop.run())
        await until(lambda: rig.loop.counters.full_passes == 1)
        ipvsadm("-e", "-t", "203.0.113.9:443", "-r", "10.9.9.9:443", "-m", "-w", "42")  # edited by hand meanwhile
        rounds = rig.loop.audit.progress.rounds
        await until(lambda: rig.loop.audit.progress.rounds >= rounds + 2)  # two full audit rounds
        assert ServiceKey(4, "tcp", "203.0.113.9", 443) not in rig.backend.read
        table = rules()
        assert {"-A -t 203.0.113.9:443 -s rr", "-a -t 203.0.113.9:443 -r 10.9.9.9:443 -m -w 42"} <= table
        running.cancel()

    asyncio.run(go())


def test_a_write_meeting_an_entry_deleted_underneath_rereads_that_service(tmp_path: Path) -> None:
    async def go() -> None:
        rig = Daemonish(tmp_path, config(interval="1h", period="1h"))  # the event's recovery, not the audit
        running = asyncio.create_task(rig.loop.run())
        await until(lambda: rig.loop.counters.full_passes == 1)
        ipvsadm("-d", "-t", "192.0.2.3:80", "-r", "10.0.2.2:80")  # the mirror still has it
        read = len(rig.backend.read)
        rig.down(2, 2)  # its weight-0 edit meets ENOENT
        await until(lambda: rig.loop.counters.rereads == 1)
        assert rig.backend.read[read:] == [ServiceKey(4, "tcp", "192.0.2.3", 80)]  # that service only
        assert "-a -t 192.0.2.3:80 -r 10.0.2.2:80 -m -w 0" in rules()  # added back, drained
        assert rig.loop.counters.errors_total == 0 and rig.backend.dumps == 1
        running.cancel()

    asyncio.run(go())
