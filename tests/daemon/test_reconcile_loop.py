"""The reconcile loop on the in-memory IPVS backend: pass pacing, counters, the state
file, reloads waiting for their pass, quorum told to VRRP, and what a stop leaves."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from director.config.load import parse_config
from director.config.model import Config
from director.daemon.health import HealthBridge, state_keys
from director.daemon.ipvs_thread import IpvsThread
from director.daemon.metrics import reconcile_lines
from director.daemon.reconcile_loop import RAMP_STEP, ReconcileLoop, _field_values, next_pass_in
from director.daemon.state_store import AdminDrain, StateStore
from director.daemon.status import daemon_status, format_status
from director.ipvs.memory import MemoryIpvs
from director.ipvs.model import AddService, DestKey, DestSpec, EditDest, ServiceKey, ServiceSpec
from director.logs import render
from director.reconcile.desired import RealServerState

CONFIG = """
[global]
reconcile_interval = "{interval}"
{ipvs}
[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
slow_start = "{slow}"
  [[virtual_server.real_server]]
  address = "10.0.0.11"
  weight = {weight}
"""

WEB = ServiceKey(4, "tcp", "192.0.2.10", 80)
FOREIGN = ServiceKey(4, "tcp", "203.0.113.9", 443)
RS = ("web", DestKey(4, "10.0.0.11", 80))


def config(interval: str = "5s", slow: str = "0s", weight: int = 1, ipvs: str = "") -> Config:
    return parse_config(tomllib.loads(CONFIG.format(interval=interval, slow=slow, weight=weight, ipvs=ipvs)))


def test_passes_come_faster_only_while_a_slow_start_ramps() -> None:
    now = 1000.0
    ramping = {RS: RealServerState(up=True, up_since=now - 1)}
    assert next_pass_in(config(), ramping, now) == 5.0  # no slow start configured
    assert next_pass_in(config(slow="10s"), ramping, now) == RAMP_STEP
    assert next_pass_in(config(interval="500ms", slow="10s"), ramping, now) == 0.5
    ramped = {RS: RealServerState(up=True, up_since=now - 11)}
    assert next_pass_in(config(slow="10s"), ramped, now) == 5.0
    assert next_pass_in(config(slow="10s"), {RS: RealServerState(up=False, up_since=None)}, now) == 5.0


class TrackingVrrp:
    def __init__(self) -> None:
        self.tracked: list[tuple[str, bool]] = []

    def set_tracked_virtual_server(self, name: str, ok: bool) -> None:
        self.tracked.append((name, ok))


class Rig:
    def __init__(self, tmp_path: Path, cfg: Config, backend: MemoryIpvs | None = None) -> None:
        self.backend = backend or MemoryIpvs()
        self.health = HealthBridge(on_change=lambda: None, now=time.time)
        self.health.keys = state_keys(cfg)
        self.health.states = {skey: RealServerState() for skey in self.health.keys.values()}
        self.vrrp = TrackingVrrp()
        self.passes = 0
        self.state_file = tmp_path / "state" / "state.json"
        self.loop = ReconcileLoop(cfg, self.backend, IpvsThread(), StateStore(str(tmp_path / "state")),
                                  self.health, self.vrrp, asyncio.Event(), on_pass=self._passed)  # type: ignore[arg-type]

    def _passed(self) -> None:
        self.passes += 1

    async def passes_reach(self, count: int) -> None:
        await self.until(lambda: self.loop.counters.passes >= count)

    async def until(self, condition: Callable[[], object]) -> None:
        """A pass is counted before it saves state and tells VRRP: wait for what follows."""
        deadline = time.monotonic() + 5
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)


def test_a_pass_programs_the_kernel_counts_and_saves(tmp_path: Path) -> None:
    async def go() -> None:
        rig = Rig(tmp_path, config())
        running = asyncio.create_task(rig.loop.run())
        await rig.passes_reach(1)
        assert WEB in rig.backend.dump() and rig.loop.kernel is not None and WEB in rig.loop.kernel
        assert rig.loop.desired is not None and WEB in rig.loop.desired
        assert rig.loop.counters.operations == {"add": 2} and rig.passes == 1
        assert sum(rig.loop.histogram.counts) == 1
        await rig.until(lambda: rig.vrrp.tracked)  # the state is saved before quorum is told
        saved = json.loads(rig.state_file.read_text())
        assert saved["owned"][0]["service"] == [4, "tcp", "192.0.2.10", 80, 0]
        assert rig.vrrp.tracked == [("web", True)] and rig.loop.quorum_ok == {"web": True}  # the first pass tells
        rig.health.states[RS] = RealServerState(up=False)  # what the bridge records on a down verdict...
        rig.loop.touch("web")  # ...and whom it tells
        await rig.passes_reach(2)
        await rig.until(lambda: len(rig.vrrp.tracked) == 2)
        assert rig.vrrp.tracked == [("web", True), ("web", False)]  # quorum lost: VRRP lowers its priority
        running.cancel()

    asyncio.run(go())


class FlakyIpvs(MemoryIpvs):
    """Raises a bug-like exception on the first dump only."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def dump(self):  # type: ignore[no-untyped-def]
        if not self.failed:
            self.failed = True
            raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")
        return super().dump()


def test_a_pass_that_raises_anything_is_logged_counted_and_retried(tmp_path: Path) -> None:
    """Not only OSError: an exception from a bug ends that pass, not the daemon."""
    async def go() -> None:
        rig = Rig(tmp_path, config(), backend=FlakyIpvs())
        running = asyncio.create_task(rig.loop.run())
        await rig.until(lambda: rig.loop.counters.errors_total == 1)
        assert rig.loop.counters.last_errors == ["reconcile pass failed: TypeError: unsupported operand type(s) "
                                                 "for +: 'int' and 'NoneType'"]
        rig.loop.poke()
        await rig.passes_reach(1)
        assert not running.done() and WEB in rig.backend.dump()
        running.cancel()

    asyncio.run(go())


def test_a_reload_is_answered_by_the_first_pass_that_runs_it(tmp_path: Path) -> None:
    async def go() -> None:
        rig = Rig(tmp_path, config())
        running = asyncio.create_task(rig.loop.run())
        await rig.passes_reach(1)
        rig.loop.reload(config(weight=3))
        rig.loop.poke()
        report = await rig.loop.applied(5)
        assert report is not None and [change.action for change in report.changes] == ["change"]
        assert rig.loop.generation == 1
        running.cancel()
        assert await rig.loop.applied(0.05) is None  # no pass runs: the wait ends empty

    asyncio.run(go())


def test_a_vrrp_only_loop_waits_for_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        loop = ReconcileLoop(config(), None, IpvsThread(), StateStore(str(tmp_path)),
                             HealthBridge(lambda: None, time.time), None, asyncio.Event(), on_pass=lambda: None)
        assert not loop.has_kernel and await loop.applied(5) is None

    asyncio.run(go())


@pytest.mark.parametrize(("on_stop", "left"), [("", {FOREIGN, WEB}), ('[ipvs]\non_stop = "remove"', {FOREIGN})])
def test_a_stop_leaves_the_table_or_removes_only_what_the_daemon_owns(tmp_path: Path, on_stop: str,
                                                                      left: set[ServiceKey]) -> None:
    async def go() -> None:
        backend = MemoryIpvs()
        backend.execute([AddService(ServiceSpec(FOREIGN))])
        rig = Rig(tmp_path, config(ipvs=on_stop), backend)
        running = asyncio.create_task(rig.loop.run())
        await rig.passes_reach(1)
        running.cancel()
        await rig.loop.stop()
        assert set(backend.dump()) == left and backend.closed
        owned = json.loads(rig.state_file.read_text())["owned"]
        assert len(owned) == (0 if on_stop else 1)

    asyncio.run(go())


def test_a_corrupt_state_file_is_moved_aside_and_the_loop_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    loop = ReconcileLoop(config(), MemoryIpvs(), IpvsThread(), StateStore(str(tmp_path)),
                         HealthBridge(lambda: None, time.time), None, asyncio.Event(), on_pass=lambda: None)
    assert loop.state.book.owned == {} and not (tmp_path / "state.json").exists()
    assert [p.name.startswith("state.json.corrupt-") for p in tmp_path.iterdir()] == [True]


def test_each_changed_field_is_one_readable_logfmt_key() -> None:
    """`weight=0->10`, not a Python dict repr of (old, new) pairs."""
    event = {"event": "ipvs change", "level": "info", "entry": "real server 10.0.0.1:80 in web (tcp 192.0.2.10:80)",
             **_field_values({"weight": (0, 10), "method": (None, "nat")})}
    assert render(event, journal=True) == ('<6>ipvs change entry="real server 10.0.0.1:80 in web (tcp 192.0.2.10:80)" '
                                           "weight=0->10 method=nat")


MANY = """
[global]
reconcile_interval = "100ms"
audit_period = "400ms"
""" + "".join(f"""
[[virtual_server]]
name = "vs{s}"
address = "192.0.2.{s + 1}"
port = 80
  [[virtual_server.real_server]]
  address = "10.0.{s}.1"
  [[virtual_server.real_server]]
  address = "10.0.0.99"
""" for s in range(8))


def test_at_rest_the_loop_never_dumps_and_audits_every_service_each_period(tmp_path: Path) -> None:
    async def go() -> None:
        cfg = parse_config(tomllib.loads(MANY))
        rig = Rig(tmp_path, cfg)
        running = asyncio.create_task(rig.loop.run())
        await rig.until(lambda: rig.loop.counters.full_passes == 1)
        writes = rig.backend.writes
        await rig.until(lambda: rig.loop.audit.progress.rounds >= 2)
        assert rig.backend.dumps == 1 and rig.backend.writes == writes  # slices read, nothing written
        assert rig.loop.audit.progress.audited_total >= 16
        assert rig.loop.audit.progress.last_round_seconds is not None
        assert rig.loop.audit.progress.last_round_seconds <= 0.4 + 0.1  # within audit_period (+ timer slack)
        # tamper: found by the audit within its period, repaired and counted
        victim = rig.backend.table[ServiceKey(4, "tcp", "192.0.2.5", 80)].dests
        victim[DestKey(4, "10.0.4.1", 80)].spec = DestSpec(DestKey(4, "10.0.4.1", 80), weight=50)
        await rig.until(lambda: rig.loop.audit.progress.repairs_total == 1)
        assert victim[DestKey(4, "10.0.4.1", 80)].spec.weight == 1
        assert rig.loop.audit.progress.last_repairs == [
            "change real server 10.0.4.1:80 in vs4 (tcp 192.0.2.5:80): weight 50 -> 1"]
        assert rig.backend.dumps == 1
        # status and /metrics show the audit's progress and its repairs
        snapshot = daemon_status(cfg, started=0.0, reloaded=None, vrrp=None, reconcile=rig.loop.counters,
                                 services=[])
        assert snapshot["reconcile"]["audit"]["repairs_total"] == 1
        assert snapshot["reconcile"]["audit"]["services"] == 8
        text = format_status(snapshot)
        assert "repairs" in text and "  repaired: change real server 10.0.4.1:80 in vs4" in text
        exposition = "".join(reconcile_lines(rig.loop.counters, rig.loop.histogram))
        assert "directord_audit_repairs_total 1\n" in exposition
        assert "directord_reconcile_full_passes_total 1\n" in exposition
        running.cancel()

    asyncio.run(go())


def test_a_drain_recomputes_only_the_services_it_covers(tmp_path: Path) -> None:
    async def go() -> None:
        cfg = parse_config(tomllib.loads(MANY.replace('audit_period = "400ms"', 'audit_period = "1h"')))
        rig = Rig(tmp_path, cfg)
        running = asyncio.create_task(rig.loop.run())
        await rig.until(lambda: rig.loop.counters.full_passes == 1)
        await rig.until(lambda: not rig.loop._audit_queue)
        log = len(rig.backend.log)
        rig.loop.state.admin_drains.append(AdminDrain("10.0.0.99", None, "vs3"))
        rig.loop.drains_changed()
        await rig.until(lambda: len(rig.backend.log) > log)
        assert rig.backend.log[log:] == [EditDest(ServiceKey(4, "tcp", "192.0.2.4", 80),
                                                  DestSpec(DestKey(4, "10.0.0.99", 80), weight=0))]
        rig.loop.state.admin_drains.append(AdminDrain("10.0.0.99"))  # every service: seven more, one batch
        rig.loop.drains_changed()
        await rig.until(lambda: len(rig.backend.log) >= log + 8)
        await asyncio.sleep(0.05)
        assert len(rig.backend.log) == log + 8 and rig.backend.dumps == 1
        assert all(d.dests[DestKey(4, "10.0.0.99", 80)].spec.weight == 0 for d in rig.backend.table.values())
        running.cancel()

    asyncio.run(go())


def test_a_reload_is_applied_to_what_it_changed_then_checked_by_a_full_pass(tmp_path: Path) -> None:
    async def go() -> None:
        cfg = parse_config(tomllib.loads(MANY.replace('audit_period = "400ms"', 'audit_period = "1h"')))
        rig = Rig(tmp_path, cfg)
        running = asyncio.create_task(rig.loop.run())
        await rig.until(lambda: rig.loop.counters.full_passes == 1)
        reads = rig.backend.reads
        changed = parse_config(tomllib.loads(MANY.replace('address = "10.0.2.1"', 'address = "10.0.2.1"\n  weight = 5')
                                             .replace('audit_period = "400ms"', 'audit_period = "1h"')))
        rig.loop.reload(changed)
        rig.loop.poke()
        report = await rig.loop.applied(5)
        assert report is not None and [c.describe() for c in report.changes] == [
            "change real server 10.0.2.1:80 in vs2 (tcp 192.0.2.3:80): weight 1 -> 5"]
        assert rig.backend.reads == reads + 1  # the changed service alone, re-read before it was planned
        await rig.until(lambda: rig.loop.counters.full_passes == 2)  # then everything is compared once
        running.cancel()

    asyncio.run(go())


def test_a_slow_start_steps_its_service_alone_up_to_the_full_weight(tmp_path: Path) -> None:
    async def go() -> None:
        rig = Rig(tmp_path, config(slow="2s", weight=10))
        running = asyncio.create_task(rig.loop.run())
        await rig.passes_reach(1)
        rig.health.states[RS] = RealServerState(up=True, up_since=rig.loop.clock.now())  # just came up
        rig.loop.touch("web")
        weights: list[int] = []

        def weight() -> int:
            return rig.backend.table[WEB].dests[RS[1]].spec.weight

        await rig.until(lambda: weight() < 10)  # the ramp's first step
        deadline = time.monotonic() + 10
        while weight() != 10 and time.monotonic() < deadline:
            if not weights or weights[-1] != weight():
                weights.append(weight())
            await asyncio.sleep(0.02)
        assert weight() == 10 and len(weights) >= 2 and weights == sorted(weights)  # stepped up to the full weight
        assert rig.backend.dumps == 1  # each step a targeted write, never a dump
        running.cancel()

    asyncio.run(go())
