"""The control API: request parsing (the same error lines the socket has always sent)
and the handlers, over a reconcile loop on the in-memory IPVS backend."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
import tomllib
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from director.config.load import parse_config
from director.config.model import Config
from director.daemon.control import ControlError
from director.daemon.control_api import (
    DRAIN_USAGE,
    PARSERS,
    ControlApi,
    DrainRequest,
    FailoverRequest,
    Known,
    ReloadRequest,
    StatusRequest,
    UndrainRequest,
    parse,
)
from director.daemon.health import HealthBridge, state_keys
from director.daemon.ipvs_thread import IpvsThread
from director.daemon.metrics import reconcile_lines
from director.daemon.reconcile_loop import ReconcileLoop
from director.daemon.state_store import AdminDrain, StateStore
from director.daemon.vrrp_child import VrrpProcessError
from director.ipvs.memory import MemoryIpvs
from director.reconcile.desired import RealServerState

CONFIG = """
[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
  [[virtual_server.real_server]]
  address = "10.0.0.11"
  weight = {weight}
  [[virtual_server.real_server]]
  address = "10.0.0.12"
"""


def config(weight: int = 1, path: str = "<config>") -> Config:
    return parse_config(tomllib.loads(CONFIG.format(weight=weight)), path)


KNOWN = Known(config(), frozenset({"VI_1"}))


def refusal(command: str, request: dict[str, Any], known: Known = KNOWN) -> str:
    """The error line a request that does not parse gets."""
    with pytest.raises(ControlError) as refused:
        parse(command, request, known)
    return str(refused.value)


async def answer_refused(answer: Awaitable[Any]) -> str:
    with pytest.raises(ControlError) as refused:
        await answer
    return str(refused.value)


@pytest.mark.parametrize("request_", [
    {"address": 5}, {}, {"address": "10.0.0.11", "port": "80"}, {"address": "10.0.0.11", "service": 3}])
@pytest.mark.parametrize("command", ["drain", "undrain"])
def test_malformed_drains_say_what_a_drain_takes(command: str, request_: dict[str, Any]) -> None:
    assert refusal(command, request_) == DRAIN_USAGE


@pytest.mark.parametrize("command", ["drain", "undrain"])
def test_a_boolean_port_is_refused(command: str) -> None:
    """Found by tests/fuzz/test_control.py: {"port": true} parsed (a bool is an int), drained
    the servers on port 1, and was saved in a form the state file's loader refuses."""
    assert refusal(command, {"address": "10.0.0.11", "port": True}) == DRAIN_USAGE
    assert DRAIN_USAGE == 'drain needs "address" (string), optional "port" (int) and "service" (string)'


def test_a_drain_names_an_existing_service_or_none() -> None:
    assert refusal("drain", {"address": "10.0.0.11", "service": "api"}) == 'no virtual_server is named "api"'
    assert parse("drain", {"command": "drain", "address": "10.0.0.11", "port": 80, "service": "web"}, KNOWN) \
        == DrainRequest("10.0.0.11", 80, "web")
    undrain = parse("undrain", {"address": "10.0.0.11"}, KNOWN)
    assert undrain == UndrainRequest("10.0.0.11") and undrain.drain() == AdminDrain("10.0.0.11")


def test_failover_needs_vrrp_and_a_known_instance() -> None:
    assert refusal("failover", {"instance": 5}, Known(config(), None)) == "no VRRP instances are configured"
    for value, shown in (("VI_9", "VI_9"), (5, "5"), (None, "None")):
        request = {} if value is None else {"instance": value}
        assert refusal("failover", request) == f'no VRRP instance is named "{shown}"'
    assert parse("failover", {"instance": "VI_1"}, KNOWN) == FailoverRequest("VI_1")


def test_status_and_reload_take_no_arguments() -> None:
    assert parse("status", {"command": "status", "extra": 1}, KNOWN) == StatusRequest()
    assert parse("reload", {}, KNOWN) == ReloadRequest()
    assert sorted(PARSERS) == ["drain", "failover", "reload", "status", "undrain"]


class FakeVrrp:
    """The VrrpProcess methods the control API uses."""

    names = frozenset({"VI_1"})

    def __init__(self, hands_over: bool | Exception) -> None:
        self.hands_over = hands_over

    async def failover(self, name: str) -> bool:
        if isinstance(self.hands_over, Exception):
            raise self.hands_over
        return self.hands_over

    async def fresh_snapshot(self) -> dict[str, Any]:
        return {"instances": {"VI_1": {"state": "backup"}}}


def api_for(tmp_path: Path, vrrp: Any = None, backend: MemoryIpvs | None = None,
            problems: list[str] | None = None) -> tuple[ControlApi, ReconcileLoop]:
    cfg = config(path=str(tmp_path / "directord.toml"))
    health = HealthBridge(on_change=lambda: None, now=time.time)
    health.keys = state_keys(cfg)
    health.states = {skey: RealServerState() for skey in health.keys.values()}
    loop = ReconcileLoop(cfg, backend, IpvsThread(), StateStore(str(tmp_path / "state")), health, None,
                         asyncio.Event(), on_pass=lambda: None)

    async def reload() -> list[str]:
        if not problems:
            loop.reload(config(weight=4, path=cfg.path))
            loop.poke()
        return problems or []

    async def status() -> dict[str, Any]:
        return {"router_id": "t1"}

    return ControlApi(loop, vrrp, reload, status), loop


def test_drain_and_undrain_keep_the_state_file_and_ask_for_a_pass(tmp_path: Path) -> None:
    async def go() -> None:
        api, loop = api_for(tmp_path)
        handlers = api.handlers()
        assert sorted(handlers) == ["drain", "failover", "reload", "status", "undrain"]
        assert await handlers["status"]({"command": "status"}) == {"router_id": "t1"}
        drained = await handlers["drain"]({"command": "drain", "address": "10.0.0.11"})
        assert drained == {"drained": ["10.0.0.11:80 in web"]}
        assert loop.dirty.is_set() and loop.state.admin_drains == [AdminDrain("10.0.0.11")]
        saved = json.loads((tmp_path / "state" / "state.json").read_text())
        assert saved["admin_drains"] == [{"address": "10.0.0.11", "port": None, "service": None}]
        await api.drain(DrainRequest("10.0.0.11"))  # again: kept once
        assert loop.state.admin_drains == [AdminDrain("10.0.0.11")]
        assert await answer_refused(api.drain(DrainRequest("10.9.9.9", 81, "web"))) \
            == "no configured real server matches 10.9.9.9:81 in web"
        assert await api.undrain(UndrainRequest("10.0.0.11")) == {"undrained": ["10.0.0.11:80 in web"]}
        assert loop.state.admin_drains == []
        assert await answer_refused(api.undrain(UndrainRequest("10.0.0.11"))) \
            == "no matching drain is in place (undrain takes the same arguments as drain)"

    asyncio.run(go())


def test_a_drain_that_cannot_be_saved_is_answered_as_an_error_and_counted(tmp_path: Path) -> None:
    """state_dir full (a real 64 KiB tmpfs, filled): the drain is in force but would end at
    the next restart, so the admin hears it (it used to be acknowledged)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(state)], check=True)
    try:
        fd = os.open(state / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"x" * 4096)
        os.close(fd)

        async def go() -> None:
            api, loop = api_for(tmp_path)
            refused = await answer_refused(api.drain(DrainRequest("10.0.0.11")))
            assert refused.startswith("drained 10.0.0.11:80 in web now, but not persisted (")
            assert "No space left on device" in refused and refused.endswith("a restart would forget it")
            assert loop.state.admin_drains == [AdminDrain("10.0.0.11")]  # in force all the same
            assert loop.counters.state_write_errors == 1
            assert "directord_state_write_errors_total 1" in "".join(reconcile_lines(loop.counters, loop.histogram))

        asyncio.run(go())
    finally:
        subprocess.run(["umount", str(state)], check=True)


def test_a_refused_reload_says_why(tmp_path: Path) -> None:
    async def go() -> None:
        api, _ = api_for(tmp_path, problems=["x.toml: global.router_id: must be a string"])
        assert await answer_refused(api.reload(ReloadRequest())) \
            == "config rejected, still running the previous one:\nx.toml: global.router_id: must be a string"

    asyncio.run(go())


def test_a_reload_answers_with_what_its_pass_changed(tmp_path: Path) -> None:
    async def go() -> None:
        vrrp_only, _ = api_for(tmp_path / "a")
        assert await vrrp_only.reload(ReloadRequest()) == {"reloaded": str(tmp_path / "a" / "directord.toml"),
                                                           "vrrp_changes": []}
        api, loop = api_for(tmp_path / "b", backend=MemoryIpvs())
        running = asyncio.create_task(loop.run())
        while loop.counters.passes < 1:  # the first pass adds the service as configured
            await asyncio.sleep(0.01)
        answer = await api.reload(ReloadRequest())
        running.cancel()
        assert answer["errors"] == [] and len(answer["changes"]) == 1 and "weight" in answer["changes"][0]

    asyncio.run(go())


def test_failover_hands_over_or_says_why_not(tmp_path: Path) -> None:
    async def go() -> None:
        api, _ = api_for(tmp_path, FakeVrrp(True))
        assert await api.failover(FailoverRequest("VI_1")) == {"instance": "VI_1", "state": "backup"}
        api, _ = api_for(tmp_path, FakeVrrp(False))
        assert await answer_refused(api.handlers()["failover"]({"instance": "VI_1"})) \
            == "VI_1 is not master here; nothing to hand over"
        api, _ = api_for(tmp_path, FakeVrrp(VrrpProcessError("the VRRP process is not running")))
        assert await answer_refused(api.failover(FailoverRequest("VI_1"))) == "the VRRP process is not running"

    asyncio.run(go())
