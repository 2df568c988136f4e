"""auto_reload: a running Daemon (in-memory IPVS) reloads when its config file is edited in
place or replaced by a rename, keeps the running config when the edit is invalid, and stops
watching when auto_reload is turned off; the inotify event parser never raises."""

from __future__ import annotations

import asyncio
import os
import random
import struct
from pathlib import Path

import uvloop

from director.config.load import load_config
from director.daemon.config_watch import IN_CLOSE_WRITE, IN_MOVED_TO, IN_Q_OVERFLOW, parse_events, touches
from director.daemon.daemon import Daemon
from director.ipvs.memory import MemoryIpvs
from tests.daemon.test_metrics import wait_until

CONFIG = """
[global]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
metrics_listen = ""
reconcile_interval = "1s"
auto_reload = {auto}

[[virtual_server]]
name = "web"
address = "198.51.100.1"
port = 80
  [[virtual_server.real_server]]
  address = "10.0.0.11"
  weight = {weight}
"""


def weight(daemon: Daemon) -> int | None:
    for service in daemon.backend.dump().values():  # type: ignore[union-attr]
        for dest in service.dests.values():
            return dest.spec.weight
    return None


async def until(predicate) -> None:  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool(predicate())
    await wait_until(check, 15)


def test_edits_reload_the_running_daemon(tmp_path: Path) -> None:
    path = tmp_path / "directord.toml"

    def write(text: str, by_rename: bool) -> None:
        if by_rename:  # the way editors and config management replace a file
            new = tmp_path / ".directord.toml.new"
            new.write_text(text)
            os.replace(new, path)
        else:
            path.write_text(text)

    path.write_text(CONFIG.format(dir=tmp_path, auto="true", weight=3))

    async def go() -> None:
        daemon = Daemon(load_config(str(path)), MemoryIpvs())
        running = asyncio.create_task(daemon.run())
        try:
            await until(lambda: weight(daemon) == 3)
            write(CONFIG.format(dir=tmp_path, auto="true", weight=7), by_rename=False)
            await until(lambda: weight(daemon) == 7)
            write(CONFIG.format(dir=tmp_path, auto="true", weight=9), by_rename=True)
            await until(lambda: weight(daemon) == 9)
            assert daemon.watch is not None and daemon.watch.changes == 2
            write(CONFIG.format(dir=tmp_path, auto="true", weight="'heavy'"), by_rename=True)  # invalid
            await until(lambda: daemon.watch is not None and daemon.watch.changes == 3)
            await asyncio.sleep(0.3)
            assert weight(daemon) == 9 and not running.done()  # refused: the running config stays
            write(CONFIG.format(dir=tmp_path, auto="false", weight=5), by_rename=True)
            await until(lambda: weight(daemon) == 5 and daemon.watch is None)
            write(CONFIG.format(dir=tmp_path, auto="false", weight=6), by_rename=False)
            await asyncio.sleep(2.0)
            assert weight(daemon) == 5  # no longer watched
        finally:
            daemon.stop.set()
            await asyncio.wait_for(running, 30)

    uvloop.run(go())


def event(wd: int, mask: int, name: bytes, pad: int = 16) -> bytes:
    body = name + b"\0" * (pad - len(name))
    return struct.pack("iIII", wd, mask, 0, len(body)) + body


def test_events_are_parsed_and_filtered_by_name() -> None:
    data = event(1, IN_CLOSE_WRITE, b"other.toml") + event(1, IN_MOVED_TO, b"directord.toml")
    events = parse_events(data)
    assert [(mask, name) for _, mask, name in events] == [(IN_CLOSE_WRITE, "other.toml"),
                                                          (IN_MOVED_TO, "directord.toml")]
    assert touches(events, "directord.toml") and not touches(events[:1], "directord.toml")
    assert touches(parse_events(event(-1, IN_Q_OVERFLOW, b"", 0)), "directord.toml")


def test_garbage_and_truncated_reads_never_raise() -> None:
    rng = random.Random(7)
    whole = event(1, IN_CLOSE_WRITE, b"directord.toml")
    assert parse_events(whole[:-3]) == []
    for _ in range(2000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
        for wd, mask, name in parse_events(data):
            assert isinstance(wd, int) and isinstance(mask, int) and isinstance(name, str)
