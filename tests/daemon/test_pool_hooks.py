"""notify_up/notify_down of a real server and quorum_up/quorum_down of a virtual server run
real programs: from a Daemon in-process (in-memory IPVS, real TCP checks on loopback) as
the real server goes and comes back, in order, with omega's down hooks on stop; and from
the hook runner alone, for its order and its bound."""

from __future__ import annotations

import asyncio
import os
import tomllib
from pathlib import Path

import pytest
import uvloop

from director.config.load import ConfigError, load_config, parse_config
from director.daemon.daemon import Daemon
from director.daemon.pool_hooks import MAX_QUEUED, PoolHooks, both
from director.ipvs.memory import MemoryIpvs
from director.reconcile.desired import RealServerState
from tests.daemon.test_mail import Listener
from tests.daemon.test_metrics import free_port, wait_until

CONFIG = """
[global]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
metrics_listen = ""
reconcile_interval = "1s"

[[virtual_server]]
name = "web"
address = "198.51.100.1"
port = 80
quorum = 1
omega = {omega}
quorum_up = ["{hook}", "quorum"]
quorum_down = ["{hook}", "quorum"]
  [virtual_server.check]
  type = "tcp"
  interval = "100ms"
  timeout = "500ms"
  rise = 1
  fall = 1
  [[virtual_server.real_server]]
  address = "127.0.0.1"
  port = {live}
  notify_up = ["{hook}", "server"]
  notify_down = ["{hook}", "server"]
"""


def hook_script(tmp_path: Path) -> tuple[Path, Path]:
    """A program that appends its argument, state, names and environment size to a log."""
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$1 $DIRECTORD_STATE $DIRECTORD_VIRTUAL_SERVER $DIRECTORD_REAL_SERVER '
                    f'path=$PATH home=$HOME" >> {log}\n')
    hook.chmod(0o755)
    return hook, log


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool(predicate())
    await wait_until(check)


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_the_daemon_runs_the_pool_hooks_in_order_and_omega_on_stop(tmp_path: Path) -> None:
    hook, log = hook_script(tmp_path)
    live = free_port()
    path = tmp_path / "directord.toml"
    path.write_text(CONFIG.format(dir=tmp_path, hook=hook, live=live, omega="true"))
    endpoint = f"127.0.0.1:{live}"

    async def go() -> None:
        daemon = Daemon(load_config(str(path)), MemoryIpvs())
        running = asyncio.create_task(daemon.run())
        listener = None
        try:
            await until(lambda: any(line.startswith("quorum DOWN web") for line in lines(log)))  # no listener yet
            listener = Listener(live)
            await until(lambda: f"server UP web {endpoint}" in " | ".join(lines(log)))
            await until(lambda: any(line.startswith("quorum UP web") for line in lines(log)))
            listener.close()
            listener = None
            await until(lambda: sum(line.startswith("quorum DOWN") for line in lines(log)) == 2)
            listener = Listener(live)
            await until(lambda: sum(line.startswith("server UP") for line in lines(log)) == 2)
            await until(lambda: sum(line.startswith("quorum UP") for line in lines(log)) == 2)
        finally:
            daemon.stop.set()
            await asyncio.wait_for(running, 30)
            if listener is not None:
                listener.close()

    uvloop.run(go())
    got = lines(log)
    server = [" ".join(line.split()[:4]) for line in got if line.startswith("server")]
    quorum = [" ".join(line.split()[:3]) for line in got if line.startswith("quorum")]
    # UP, DOWN, UP while running; omega's DOWN on stop
    assert server == [f"server {state} web {endpoint}" for state in ("UP", "DOWN", "UP", "DOWN")], got
    assert quorum == [f"quorum {state} web" for state in ("DOWN", "UP", "DOWN", "UP", "DOWN")], got
    assert all("home=/ " in line + " " and "/usr/bin" in line for line in lines(log))


def hooks_for(tmp_path: Path, hook: Path, up: bool = True) -> tuple[PoolHooks, object]:
    config = load_config_text(CONFIG.format(dir=tmp_path, hook=hook, live=8080, omega="false"))
    vs = config.virtual_servers[0]
    state = {("web", key): RealServerState(up=up) for key in [_dest(vs)]}
    return PoolHooks(lambda: config, lambda: state), config


def _dest(vs):  # type: ignore[no-untyped-def]
    from director.reconcile.desired import dest_key
    return dest_key(vs.real_servers[0])


def load_config_text(text: str):  # type: ignore[no-untyped-def]
    return parse_config(tomllib.loads(text))


def test_hooks_of_one_server_run_one_at_a_time_in_order(tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    slow = tmp_path / "slow.sh"
    # a slow hook: a later one overtaking it would write first
    slow.write_text(f'#!/bin/sh\n[ "$DIRECTORD_STATE" = UP ] && sleep 0.3\necho "$DIRECTORD_STATE" >> {log}\n')
    slow.chmod(0o755)
    hooks, _ = hooks_for(tmp_path, slow)

    async def go() -> None:
        hooks.on_real_server(("web", "127.0.0.1:8080"), True, "connected")
        hooks.on_real_server(("web", "127.0.0.1:8080"), False, "refused")
        await hooks.close()

    asyncio.run(go())
    assert lines(log) == ["UP", "DOWN"]
    assert hooks.ran["ok"] == 2


def test_a_flood_of_changes_keeps_at_most_max_queued_waiting(tmp_path: Path) -> None:
    hook, log = hook_script(tmp_path)
    hooks, _ = hooks_for(tmp_path, hook, up=False)

    async def go() -> None:
        for index in range(MAX_QUEUED + 10):
            hooks.on_real_server(("web", "127.0.0.1:8080"), index % 2 == 0, "flap")
        await hooks.close()

    asyncio.run(go())
    assert hooks.dropped >= 9  # one started at once; the queue kept the last MAX_QUEUED
    assert len(lines(log)) == MAX_QUEUED + 10 - hooks.dropped


def test_a_hook_that_cannot_start_is_counted_not_raised(tmp_path: Path) -> None:
    hooks, _ = hooks_for(tmp_path, tmp_path / "missing.sh")

    async def go() -> None:
        hooks.on_quorum("web", False, False)
        await hooks.close()

    asyncio.run(go())
    assert hooks.ran["failed"] == 1


def test_a_first_pass_with_quorum_runs_nothing(tmp_path: Path) -> None:
    hook, log = hook_script(tmp_path)
    hooks, _ = hooks_for(tmp_path, hook, up=False)

    async def go() -> None:
        hooks.on_quorum("web", True, True)
        await hooks.close()

    asyncio.run(go())
    assert lines(log) == []


def test_one_listener_failing_does_not_silence_the_other() -> None:
    heard: list[int] = []

    def broken(value: int) -> None:
        raise RuntimeError("bug")

    both(broken, heard.append)(7)
    assert heard == [7]


@pytest.mark.parametrize("value", ['"/bin/echo hi there"', "[]", "7"])
def test_a_hook_must_be_a_program_or_an_argv(tmp_path: Path, value: str) -> None:
    text = CONFIG.format(dir=tmp_path, hook="/bin/true", live=8080, omega="false").replace(
        'quorum_up = ["/bin/true", "quorum"]', f"quorum_up = {value}")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    assert "quorum_up" in str(caught.value)


def test_no_stray_environment_reaches_a_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "env.log"
    dump = tmp_path / "env.sh"
    dump.write_text(f"#!/bin/sh\nenv > {log}\n")
    dump.chmod(0o755)
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    hooks, _ = hooks_for(tmp_path, dump)

    async def go() -> None:
        hooks.on_real_server(("web", "127.0.0.1:8080"), False, "refused")
        await hooks.close()

    asyncio.run(go())
    names = {line.split("=", 1)[0] for line in lines(log)}
    assert "NOTIFY_SOCKET" not in names and os.environ.get("NOTIFY_SOCKET")
    assert {"DIRECTORD_STATE", "DIRECTORD_REAL_SERVER", "DIRECTORD_REASON"} <= names
