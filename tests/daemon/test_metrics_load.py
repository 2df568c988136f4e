"""/metrics and the control socket under load, over real sockets on loopback: concurrent
scrapes share one render, HEAD renders nothing, the VRRP child is asked at most once per
period, connections over the cap are shed and counted, and idle clients cannot take the
descriptors the daemon's own work needs (issue 17)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from director.config.load import load_config
from director.daemon import control, metrics
from director.daemon import views as views_module
from director.daemon.control import request
from director.daemon.daemon import Daemon
from director.daemon.metrics import MetricsServer
from director.ipvs.memory import MemoryIpvs
from tests.daemon.test_metrics import CONFIG, free_port, samples, wait_until
from tests.daemon.test_views import views_for

REPO = Path(__file__).resolve().parents[2]
CHUNKS = [f"directord_test{{n=\"{i}\"}} {i}\n" * 50 for i in range(40)]  # about 1 MB
BODY = "".join(CHUNKS).encode()


class SlowExposition:
    """An exposition that takes a while to render and counts its renders."""

    def __init__(self, seconds: float = 0.3) -> None:
        self.calls = 0
        self.seconds = seconds

    async def __call__(self) -> AsyncIterator[str]:
        self.calls += 1
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[str]:
        for chunk in CHUNKS:
            await asyncio.sleep(self.seconds / len(CHUNKS))
            yield chunk


async def fetch(port: int, method: str = "GET") -> tuple[bytes, bytes]:
    """One request; the response head and body (read to the end, checked against its length)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} /metrics HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n") if method == "GET" else ():
        if line.lower().startswith(b"content-length:"):
            assert int(line.split(b":")[1]) == len(body), "body cut short"
    return head, body


async def started(exposition: Any, **kwargs: Any) -> MetricsServer:
    server = MetricsServer(f"127.0.0.1:{free_port()}", exposition, **kwargs)
    await server.start()
    return server


def test_concurrent_scrapes_share_one_render_and_get_the_whole_body() -> None:
    async def go() -> None:
        exposition = SlowExposition(1.0)  # long enough for all 24 to arrive while it runs
        server = await started(exposition)
        try:
            answers = await asyncio.gather(*(fetch(server.port) for _ in range(24)))
            assert all(head.startswith(b"HTTP/1.1 200") for head, _ in answers)
            assert all(body == BODY for _, body in answers)
            assert exposition.calls == 1
            # one that comes after the render finished gets a fresh one
            assert (await fetch(server.port))[1] == BODY
            assert exposition.calls == 2
        finally:
            await server.close()

    uvloop.run(go())


def test_head_answers_without_rendering() -> None:
    async def go() -> None:
        exposition = SlowExposition()
        server = await started(exposition)
        try:
            for _ in range(20):
                head, body = await fetch(server.port, "HEAD")
                assert head.startswith(b"HTTP/1.1 200") and b"text/plain; version=0.0.4" in head and body == b""
            assert exposition.calls == 0
        finally:
            await server.close()

    uvloop.run(go())


class CountingVrrp:
    """A VRRP child that takes a moment to answer and counts the snapshots asked of it;
    `last` is what it pushed or answered last (VrrpProcess.snapshot())."""

    def __init__(self) -> None:
        self.asked = 0
        self.last: dict[str, Any] = {"instances": {}, "unmatched_errors": {}}

    def snapshot(self) -> dict[str, Any]:
        return self.last

    async def fresh_snapshot(self) -> dict[str, Any]:
        self.asked += 1
        await asyncio.sleep(0.05)
        return self.last


def test_a_scrape_storm_asks_the_vrrp_child_at_most_once_per_period(tmp_path: Path) -> None:
    period = getattr(views_module, "METRICS_SNAPSHOT_PERIOD", 1.0)
    vrrp = CountingVrrp()
    views, _ = views_for(tmp_path, MemoryIpvs(), vrrp)
    storm = 2.5 * period

    async def go() -> int:
        server = await started(views.exposition)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + storm
        scrapes = 0

        async def scraper() -> None:
            nonlocal scrapes
            while loop.time() < deadline:
                head, body = await fetch(server.port)
                assert head.startswith(b"HTTP/1.1 200") and b"directord_info" in body
                scrapes += 1

        try:
            await asyncio.gather(*(scraper() for _ in range(16)))
        finally:
            await server.close()
        return scrapes

    scrapes = uvloop.run(go())
    assert scrapes > 50
    assert vrrp.asked <= math.ceil(storm / period) + 1, (vrrp.asked, scrapes)


def test_a_transition_the_child_pushed_shows_before_the_period_ends(tmp_path: Path) -> None:
    vrrp = CountingVrrp()
    views, _ = views_for(tmp_path, MemoryIpvs(), vrrp)
    instance = {"interface": "eth0", "vrid": 7, "priority": 100, "effective_priority": 100, "transitions": 1,
                "adverts_sent": 0, "adverts_received": 0, "garps_sent": 0, "answers_suppressed": 0}

    async def body() -> str:
        return "".join([chunk async for chunk in await views.exposition()])

    async def go() -> None:
        vrrp.last = {"instances": {"VI_1": {**instance, "state": "backup"}}, "unmatched_errors": {}}
        assert 'vrid="7",state="backup"} 1' in await body()
        vrrp.last = {"instances": {"VI_1": {**instance, "state": "master"}}, "unmatched_errors": {}}  # pushed
        assert 'vrid="7",state="master"} 1' in await body()
        assert vrrp.asked == 1

    uvloop.run(go())


def test_connections_over_the_cap_are_shed_and_counted_while_control_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_CONNECTIONS", 3, raising=False)
    monkeypatch.setattr(control, "MAX_CONNECTIONS", 2, raising=False)
    ports = {"live": free_port(), "dead": free_port(), "metrics": free_port()}
    path = tmp_path / "directord.toml"
    path.write_text(CONFIG.format(dir=tmp_path, name="web", **ports))
    sock = str(tmp_path / "control.sock")

    async def go() -> None:
        daemon = Daemon(load_config(str(path)), MemoryIpvs())
        running = asyncio.create_task(daemon.run())
        try:
            async def up() -> bool:
                return os.path.exists(sock) and daemon.metrics_server is not None \
                    and daemon.metrics_server.server is not None

            await wait_until(up)
            idle = [await asyncio.open_connection("127.0.0.1", ports["metrics"]) for _ in range(3)]
            await asyncio.sleep(0.2)
            reader, writer = await asyncio.open_connection("127.0.0.1", ports["metrics"])  # the cap + 1
            shed = await asyncio.wait_for(reader.read(), 1.0)  # answered and closed at once, not held
            assert shed.startswith(b"HTTP/1.1 503"), shed
            writer.close()
            # the control socket still answers while /metrics is full
            status = await asyncio.to_thread(request, sock, "status", 5.0)
            assert "virtual_servers" in status

            idle_control = [await asyncio.open_unix_connection(sock) for _ in range(2)]
            await asyncio.sleep(0.2)
            reader, writer = await asyncio.open_unix_connection(sock)
            refused = json.loads(await asyncio.wait_for(reader.readline(), 1.0))
            assert refused["ok"] is False and "too many" in refused["error"]
            writer.close()

            for _, idle_writer in idle + idle_control:
                idle_writer.close()
            await asyncio.sleep(0.2)
            reader, writer = await asyncio.open_connection("127.0.0.1", ports["metrics"])
            writer.write(b"GET /metrics HTTP/1.1\r\n\r\n")
            body = (await asyncio.wait_for(reader.read(), 10)).partition(b"\r\n\r\n")[2].decode()
            writer.close()
            got = samples(body)
            assert got['directord_connections_shed_total{server="metrics"}'] == 1
            assert got['directord_connections_shed_total{server="control"}'] == 1
            assert got['directord_connections_limit{server="metrics"}'] == 3
            assert got['directord_connections_open{server="metrics"}'] == 1  # this scrape
        finally:
            daemon.stop.set()
            await asyncio.wait_for(running, 30)

    uvloop.run(go())


# Run under a low RLIMIT_NOFILE: serves /metrics and a control socket, then (on a line on
# stdin) does what the daemon's own work does with descriptors: a state write and files.
STARVED = textwrap.dedent("""
    import asyncio, json, resource, sys
    import uvloop
    from director.daemon.control import ControlServer
    from director.daemon.metrics import MetricsServer
    from director.daemon.state_store import State, StateError, StateStore

    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    async def exposition():
        async def chunks():
            yield "directord_info 1\\n"
        return chunks()

    async def status(request):
        return {"ok": True}

    async def main():
        metrics = MetricsServer("127.0.0.1:0", exposition)
        await metrics.start()
        port = metrics.server.sockets[0].getsockname()[1]
        ctl = ControlServer(sys.argv[2] + "/control.sock", {"status": status})
        await ctl.start()
        print(json.dumps({"port": port}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        try:
            StateStore(sys.argv[2] + "/state").save(State())
            files = [open(sys.argv[2] + f"/file{i}", "w") for i in range(int(sys.argv[3]))]
            for f in files:
                f.close()
            print(json.dumps({"ok": True}), flush=True)
        except (OSError, StateError) as exc:
            print(json.dumps({"ok": False, "error": str(exc)}), flush=True)
        await ctl.close()
        await metrics.close()

    uvloop.run(main())
""")


def test_idle_connections_cannot_starve_a_state_write_under_a_low_rlimit(tmp_path: Path) -> None:
    limit, files = 128, 24  # the daemon keeps 64 descriptors free at this limit
    (tmp_path / "state").mkdir(mode=0o700)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", STARVED, str(limit), str(tmp_path), str(files)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    clients: list[socket.socket] = []
    try:
        port = json.loads(child.stdout.readline())["port"]
        for _ in range(limit):  # more idle clients than the child has descriptors
            for family, address in ((socket.AF_INET, ("127.0.0.1", port)),
                                    (socket.AF_UNIX, str(tmp_path / "control.sock"))):
                client = socket.socket(family, socket.SOCK_STREAM)
                client.settimeout(0.2)
                try:
                    client.connect(address)
                except OSError:  # a full backlog: the child is not accepting, which is fine
                    client.close()
                    continue
                clients.append(client)
        time.sleep(0.5)  # let the child accept what it will
        child.stdin.write("go\n")
        child.stdin.flush()
        answer = json.loads(child.stdout.readline())
        assert answer == {"ok": True}, answer
    finally:
        for client in clients:
            client.close()
        child.stdin.close()
        child.wait(timeout=20)
