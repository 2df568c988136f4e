"""A running Daemon in-process (in-memory IPVS backend, real TCP checks on loopback):
/metrics agrees with status, passes promtool and follows a reload; `[ipvs] on_stop`
decides what a stop leaves in the table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
from pathlib import Path

import uvloop

from director.config.load import load_config
from director.daemon.control_api import ReloadRequest
from director.daemon.daemon import Daemon
from director.ipvs.memory import MemoryIpvs
from director.ipvs.model import AddService, ServiceKey, ServiceSpec

CONFIG = """
[global]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
metrics_listen = "127.0.0.1:{metrics}"
reconcile_interval = "1s"

[[virtual_server]]
name = "{name}"
address = "198.51.100.1"
port = 80
on_failure = "quiesce"
  [virtual_server.check]
  type = "tcp"
  interval = "100ms"
  timeout = "1s"
  rise = 1
  fall = 1
  [[virtual_server.real_server]]
  address = "127.0.0.1"
  port = {live}
  weight = 5
  [[virtual_server.real_server]]
  address = "127.0.0.1"
  port = {dead}
  weight = 3
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def fetch(port: int, path: str) -> tuple[bytes, bytes]:
    """One GET on the daemon's HTTP listener: (status line and headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return head, body


async def scrape(port: int) -> str:
    head, body = await fetch(port, "/metrics")
    assert head.startswith(b"HTTP/1.1 200"), head
    return body.decode()


def samples(body: str) -> dict[str, float]:
    """An exposition as {sample with labels: value}, after promtool has passed it."""
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def wait_until(check, seconds: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def test_metrics_agree_with_status_and_follow_a_reload(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    ports = {"live": listener.getsockname()[1], "dead": free_port(), "metrics": free_port()}
    path = tmp_path / "directord.toml"
    path.write_text(CONFIG.format(dir=tmp_path, name="web", **ports))
    uvloop.run(_scenario(path, ports))
    listener.close()


async def _scenario(path: Path, ports: dict[str, int]) -> None:
    daemon = Daemon(load_config(str(path)), MemoryIpvs())
    running = asyncio.create_task(daemon.run())
    live = f'virtual_server="web",address="127.0.0.1",port="{ports["live"]}"'
    dead = f'virtual_server="web",address="127.0.0.1",port="{ports["dead"]}"'
    try:
        async def verdicts_in() -> bool:
            with contextlib.suppress(OSError):
                got = samples(await scrape(ports["metrics"]))
                return (got.get(f"directord_real_server_weight{{{dead}}}") == 0
                        and got.get(f"directord_real_server_weight{{{live}}}") == 5)
            return False

        await wait_until(verdicts_in)
        got = samples(await scrape(ports["metrics"]))
        assert got[f"directord_real_server_up{{{live}}}"] == 1
        assert got[f"directord_real_server_up{{{dead}}}"] == 0
        assert got[f"directord_real_server_configured_weight{{{dead}}}"] == 3
        assert got['directord_virtual_server_quorum_ok{virtual_server="web"}'] == 1
        refused = (f'directord_health_check_failures_total{{address="127.0.0.1",port="{ports["dead"]}",'
                   'check="tcp",reason="refused"}')
        assert got[refused] >= 1
        checked = f'address="127.0.0.1",port="{ports["live"]}",check="tcp"'
        assert got[f"directord_health_check_duration_seconds_count{{{checked}}}"] >= 1

        # The same numbers status shows.
        status = await daemon.views.status()
        for rs in status["virtual_servers"][0]["real_servers"]:
            port = rs["address"].rsplit(":", 1)[1]
            labels = f'virtual_server="web",address="127.0.0.1",port="{port}"'
            assert got[f"directord_real_server_weight{{{labels}}}"] == rs["weight"]
            assert got[f"directord_real_server_up{{{labels}}}"] == (rs["health"] in ("up", "falling"))

        # The HTTP API serves the same document as status --json, and the daemon is healthy.
        head, body = await fetch(ports["metrics"], "/api/v1/status")
        assert head.startswith(b"HTTP/1.1 200") and b"Content-Type: application/json" in head, head
        served = {rs["address"]: (rs["health"], rs["weight"])
                  for rs in json.loads(body)["virtual_servers"][0]["real_servers"]}
        assert served == {rs["address"]: (rs["health"], rs["weight"])
                          for rs in status["virtual_servers"][0]["real_servers"]}
        head, body = await fetch(ports["metrics"], "/healthz")
        assert head.startswith(b"HTTP/1.1 200") and json.loads(body) == {"healthy": True}, (head, body)
        head, _ = await fetch(ports["metrics"], "/api/v1/nothing")
        assert head.startswith(b"HTTP/1.1 404"), head

        # A reload answers once the pass that applies it has run, with what it changed.
        path.write_text(CONFIG.format(dir=path.parent, name="web", **ports).replace("weight = 5", "weight = 6"))
        answer = await daemon.control_api.reload(ReloadRequest())
        assert len(answer["changes"]) == 1 and "weight" in answer["changes"][0] and answer["errors"] == []

        # A reload renames the service: labels are rebuilt, the old name is gone.
        path.write_text(CONFIG.format(dir=path.parent, name="api", **ports))
        assert await daemon.reload() == []

        async def renamed() -> bool:
            body = await scrape(ports["metrics"])
            return 'virtual_server="api"' in body and 'virtual_server="web"' not in body

        await wait_until(renamed)
    finally:
        daemon.stop.set()
        await asyncio.wait_for(running, 30)


FOREIGN = ServiceKey(4, "tcp", "203.0.113.9", 443)


def test_on_stop_remove_deletes_only_what_the_daemon_owns(tmp_path: Path) -> None:
    ports = {"live": free_port(), "dead": free_port(), "metrics": free_port()}
    ours = ServiceKey(4, "tcp", "198.51.100.1", 80)
    assert _table_after_stop(tmp_path / "keep", ports, "") == {FOREIGN, ours}  # default: the table stays
    # "remove": the daemon's service goes, one made by someone else survives
    assert _table_after_stop(tmp_path / "remove", ports, '[ipvs]\non_stop = "remove"\n') == {FOREIGN}


def _table_after_stop(workdir: Path, ports: dict[str, int], extra: str) -> set[ServiceKey]:
    workdir.mkdir()
    path = workdir / "directord.toml"
    path.write_text(extra + CONFIG.format(dir=workdir, name="web", **ports))
    backend = MemoryIpvs()
    backend.execute([AddService(ServiceSpec(FOREIGN))])

    async def run() -> None:
        daemon = Daemon(load_config(str(path)), backend)
        running = asyncio.create_task(daemon.run())

        async def reconciled() -> bool:
            return daemon.reconciler.counters.passes >= 1

        await wait_until(reconciled)
        daemon.stop.set()
        assert await asyncio.wait_for(running, 30) == 0

    uvloop.run(run())
    return set(backend.dump())


def test_vrrp_state_gauge_uses_the_fsm_vocabulary() -> None:
    """Logs and status say `init`; the state gauge must offer (and set) the same name."""
    from director.daemon.metrics import vrrp_families
    from vrrp.fsm import State

    instance = {"interface": "eth0", "vrid": 7, "state": "init", "priority": 100, "effective_priority": 100,
                "transitions": 0, "adverts_sent": 0, "adverts_received": 0, "garps_sent": 0, "answers_suppressed": 0}
    state_family = vrrp_families({"VI_1": instance})[0]
    body = "".join(state_family.render())
    for known in State:
        assert f'state="{known.value}"' in body
    assert 'directord_vrrp_state{vrrp_instance="VI_1",interface="eth0",vrid="7",state="init"} 1' in body
    assert "initialize" not in body
