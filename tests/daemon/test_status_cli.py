"""`directord status [NAME] [--json]` against a running Daemon in-process (in-memory IPVS
backend, the real control socket), and `--json` errors as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import uvloop

from director.config.load import load_config
from director.daemon.daemon import Daemon
from director.ipvs.memory import MemoryIpvs

CONFIG = """
[global]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
reconcile_interval = "1s"
{services}
"""
SERVICE = """
[[virtual_server]]
name = "{name}"
address = "198.51.100.{n}"
port = 80
  [virtual_server.check]
  type = "none"
  [[virtual_server.real_server]]
  address = "10.0.0.{n}"
"""


async def directord(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "director.cli", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_status_name_filters_and_json_errors_are_json(tmp_path: Path) -> None:
    path = tmp_path / "directord.toml"
    services = SERVICE.format(name="web", n=1) + SERVICE.format(name="dns", n=2)
    path.write_text(CONFIG.format(dir=tmp_path, services=services))
    uvloop.run(_scenario(path))


async def _scenario(path: Path) -> None:
    daemon = Daemon(load_config(str(path)), MemoryIpvs())
    running = asyncio.create_task(daemon.run())
    sock = str(path.parent / "control.sock")
    try:
        for _ in range(100):
            if Path(sock).exists():
                break
            await asyncio.sleep(0.1)
        code, out, err = await directord("status", "--socket", sock, "--json", "dns")
        assert code == 0, err
        assert [vs["name"] for vs in json.loads(out)["virtual_servers"]] == ["dns"]
        code, out, err = await directord("status", "--socket", sock, "web")
        assert code == 0, err
        assert "web  tcp 198.51.100.1:80" in out and "dns" not in out
        code, out, err = await directord("status", "--socket", sock, "nope")
        assert (code, out) == (2, "")
        assert err.splitlines() == ["directord status: no virtual server or VRRP instance named 'nope' "
                                    "(known: web, dns)"]
        code, out, err = await directord("status", "--socket", sock, "--json", "nope")
        assert (code, err) == (2, "")
        assert json.loads(out) == {"error": "no virtual server or VRRP instance named 'nope' (known: web, dns)",
                                   "errors": ["no virtual server or VRRP instance named 'nope' (known: web, dns)"],
                                   "exit": 2}
    finally:
        daemon.stop.set()
        await asyncio.wait_for(running, 30)


def test_json_error_without_a_daemon_is_json_on_stdout(tmp_path: Path) -> None:
    code, out, err = asyncio.run(directord("status", "--json", "--socket", str(tmp_path / "absent.sock")))
    answer = json.loads(out)
    assert code == 2 and answer["exit"] == 2 and err == ""
    assert str(tmp_path / "absent.sock") in answer["error"] and "\n" not in answer["error"]


def test_json_config_error_lists_every_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[virtual_server]]\nname = "x"\naddress = "192.0.2.1"\nport = 80\nscheduler = "nope"\n')
    code, out, _ = asyncio.run(directord("diff", "--json", "-c", str(bad)))
    answer = json.loads(out)
    assert code == 1 and answer["exit"] == 1
    assert answer["errors"][0].startswith(f"{bad}:")
