"""The callback (no task per check) path: tcp and plain http on the shared epoll."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
import uvloop

from director.config.model import CheckConfig
from healthcheck import _poll, http, probes, tcp
from healthcheck.result import ProbeResult, Target
from healthcheck.scheduler import Scheduler
from tests.healthcheck import adversaries as adv
from tests.healthcheck.conftest import run

LOCAL = "127.0.0.1"


async def peer_sees(check: CheckConfig, module=tcp, reply: bytes = b"") -> str:
    """What the server's read sees once the check has its verdict: EOF or a reset."""
    seen: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(reader, writer):
        if reply:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        try:
            data = await reader.read(65536)
            while data:
                data = await reader.read(65536)
            seen.set_result("eof")
        except ConnectionResetError:
            seen.set_result("reset")

    async with adv.serve(handler) as port:
        result = await module.probe(Target(LOCAL, port), check)
        assert result.ok, result
        return await asyncio.wait_for(seen, 2)


def test_verdict_closes_with_a_reset():
    """SO_LINGER {1,0}: the server sees a RST, so neither side keeps a TIME_WAIT."""
    assert run(peer_sees(CheckConfig(type="tcp"))) == "reset"
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    check = CheckConfig(type="http", expect_body="ok")
    assert run(peer_sees(check, http, reply)) == "reset"


def test_no_time_wait_left_on_the_director():
    async def go():
        server = await asyncio.start_server(lambda r, w: w.close(), LOCAL, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            for _ in range(20):
                assert (await tcp.probe(Target(LOCAL, port), CheckConfig(type="tcp"))).ok
            return port

    port = run(go())
    out = _ss_time_wait(port)
    assert out == [], out


def _ss_time_wait(port: int) -> list[str]:
    import subprocess

    res = subprocess.run(["ss", "-Htn", "state", "time-wait", f"dport = :{port}"],
                         capture_output=True, text=True, check=True)
    return res.stdout.splitlines()


def test_send_phase_is_named_when_the_server_does_not_read():
    """A send that fills the socket buffers waits on the edge-triggered epoll, bounded
    by the one deadline."""
    check = CheckConfig(type="tcp", timeout=0.5, send=b"x" * (32 << 20), expect="never")
    result = run(_against(adv.hang, check))
    assert not result.ok and result.reason == "timeout after 0.5s sending", result


def test_big_send_then_expect():
    async def echo_after_all(reader, writer):
        await reader.readexactly(4 << 20)
        writer.write(b"GOT IT\n")
        await writer.drain()
        await asyncio.sleep(3600)

    check = CheckConfig(type="tcp", timeout=3.0, send=b"y" * (4 << 20), expect="GOT IT")
    result = run(_against(echo_after_all, check))
    assert result.ok and result.reason == "reply matched 'GOT IT'", result


def test_send_without_expect():
    check = CheckConfig(type="tcp", send=b"hello\n")
    result = run(_against(adv.hang, check))
    assert result.ok and result.reason == "connected, sent 6 bytes"


def test_reply_in_one_byte_pieces_is_reassembled():
    async def bytewise(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        for b in b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nall ok":
            writer.write(bytes([b]))
            await writer.drain()
            await asyncio.sleep(0.002)
        await asyncio.sleep(3600)

    check = CheckConfig(type="http", timeout=2.0, expect_body="all ok$")
    result = run(_against(bytewise, check, http))
    assert result.ok and result.reason == "HTTP 200 OK, body matched 'all ok$'", result


def test_bad_http_config_is_a_reason_not_a_crash():
    result = run(http.probe(Target(LOCAL, 1), CheckConfig(type="http", path="/a b")))
    assert not result.ok and result.reason == "bad check config: bad HTTP path '/a b'"


def test_ipv6_http():
    async def go():
        async def ok(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

        server = await asyncio.start_server(ok, "::1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            check = CheckConfig(type="http", expect_status=((200, 299),))
            return await http.probe(Target("::1", port), check)

    result = run(go())
    assert result.ok and result.reason == "HTTP 204 No Content", result


def test_connect_timeout_to_a_full_backlog():
    """A listener that never accepts, backlog full: SYNs go unanswered, phase 'connecting'."""
    srv = socket.socket()
    srv.bind((LOCAL, 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue (and the SYN queue's allowance)
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect((LOCAL, port))
            fillers.append(s)
        result = run(tcp.probe(Target(LOCAL, port), CheckConfig(type="tcp", timeout=0.3)))
    finally:
        for s in fillers:
            s.close()
        srv.close()
    assert not result.ok and result.reason == "timeout after 0.3s connecting", result
    assert 0.3 <= result.latency <= 0.3 + 2 * _poll.DEADLINE_TICK + 0.05, result


def test_scheduler_runs_tcp_and_http_without_a_task_per_check(nginx):
    """With the built-in probes no task exists per check; samples reach on_sample."""

    async def go():
        samples: list[tuple[Target, str, ProbeResult]] = []
        s = Scheduler(on_sample=lambda t, c, r: samples.append((t, c.type, r)))
        fast = dict(interval=0.05, timeout=0.5, rise=1, fall=1, jitter=0.0)
        s.add("t", Target(LOCAL, nginx[0]), CheckConfig(type="tcp", **fast))
        s.add("h", Target(LOCAL, nginx[0]), CheckConfig(type="http", path="/health", **fast))
        s.add("h2", Target(LOCAL, nginx[0]), CheckConfig(type="http", path="/health", **fast))
        tasks = set()
        for _ in range(30):
            await asyncio.sleep(0.01)
            tasks |= asyncio.all_tasks() - {asyncio.current_task()}
        snaps = s.snapshots()
        await s.close()
        return samples, tasks, snaps

    samples, tasks, snaps = uvloop.run(go())
    assert tasks == set()
    kinds = {k for _, k, _ in samples}
    assert kinds == {"tcp", "http"}
    assert all(r.ok for _, _, r in samples), samples
    # the two http subscribers share one probe: one sample per check, not per subscriber
    assert snaps["h"] is snaps["h2"]
    assert sum(1 for _, k, _ in samples if k == "http") == snaps["h"].checks


def test_scheduler_falls_back_to_tasks_for_other_types():
    async def go():
        seen = []
        s = Scheduler(on_sample=lambda t, c, r: seen.append(r.reason))
        s.add("n", Target(LOCAL, 1), CheckConfig(type="none", interval=0.05, jitter=0.0))
        while not seen:
            await asyncio.sleep(0.01)
        await s.close()
        return seen

    assert run(go())[0] == "no check configured"
    assert probes.plan(Target(LOCAL, 1), CheckConfig(type="https")) is None


def test_removing_a_probe_in_flight_closes_its_socket():
    async def go():
        async with adv.serve(adv.hang) as port:
            s = Scheduler()
            s.add("k", Target(LOCAL, port), CheckConfig(type="http", timeout=5.0, jitter=0.0))
            poller = None
            for _ in range(100):
                await asyncio.sleep(0.01)
                poller = _poll._pollers.get(asyncio.get_running_loop())
                if poller and poller.conns:
                    break
            assert poller is not None and len(poller.conns) == 1
            s.remove("k")
            left = len(poller.conns)
            await s.close()
            return left

    assert run(go()) == 0


@pytest.mark.parametrize("loop_run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_many_concurrent_checks_each_get_their_own_verdict(loop_run, nginx):
    """Hundreds in flight at once on one epoll: fd reuse never mixes verdicts up."""

    async def go():
        closed = adv.closed_port()
        pairs = []
        for i in range(150):
            if i % 3 == 0:
                pairs.append((Target(LOCAL, closed), CheckConfig(type="tcp", port=i)))
            elif i % 3 == 1:
                pairs.append((Target(LOCAL, nginx[0]), CheckConfig(type="http", path="/fail",
                                                                     port=i)))
            else:
                pairs.append((Target(LOCAL, nginx[0]), CheckConfig(type="http", path="/health",
                                                                     expect_body="ok", port=i)))
        results = await asyncio.gather(*(probes.probe(t, c) for t, c in pairs))
        return results

    results = loop_run(go())
    for i, r in enumerate(results):
        if i % 3 == 0:
            assert r.reason == "connection refused", (i, r)
        elif i % 3 == 1:
            assert r.reason == "status 503 Service Temporarily Unavailable not in [200]", (i, r)
        else:
            assert r.reason == "HTTP 200 OK, body matched 'ok'", (i, r)


async def _against(handler, check: CheckConfig, module=tcp) -> ProbeResult:
    async with adv.serve(handler) as port:
        return await module.probe(Target(LOCAL, port), check)


def test_finished_checks_leave_no_deadline_timer(nginx):
    """A slot's timer goes once its checks are done: healthy targets cause no wake-ups."""

    async def go():
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(
            http.probe(Target(LOCAL, nginx[0]), CheckConfig(type="http", path="/health"))
            for _ in range(20)))
        poller = _poll._pollers[loop]
        return results, dict(poller.slots), len(poller.conns)

    results, slots, conns = run(go())
    assert all(r.ok for r in results)
    assert slots == {} and conns == 0


def test_a_stalled_loop_reads_replies_before_failing_deadlines(nginx):
    """A process starved past the deadline still reads the replies that did arrive."""

    async def go():
        fut = asyncio.ensure_future(
            http.probe(Target(LOCAL, nginx[0]), CheckConfig(type="http", path="/health",
                                                             timeout=0.2)))
        loop = asyncio.get_running_loop()
        for _ in range(10_000):  # until the request is out (connect and send take loop turns)
            await asyncio.sleep(0)
            poller = _poll._pollers.get(loop)
            if poller is not None and any(c.state == _poll._READING for c in poller.conns.values()):
                break
        import time

        time.sleep(0.5)  # the loop is stalled well past the deadline
        return await fut

    result = run(go())
    assert result.ok and result.reason == "HTTP 200 OK", result
