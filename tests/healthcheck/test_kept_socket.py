"""A probe keeps its socket between checks (disconnect by connect(AF_UNSPEC), connect
again), and `quick_judge` answers exactly what `HttpJudge` does for a whole reply."""

from __future__ import annotations

import asyncio
import socket

import pytest

from director.config.model import CheckConfig
from healthcheck import http
from healthcheck._io import ProbeError
from healthcheck.result import ProbeResult, Target
from healthcheck.scheduler import Scheduler
from tests.healthcheck import adversaries as adv
from tests.healthcheck.conftest import run

LOCAL = "127.0.0.1"
FAST = dict(interval=0.05, timeout=0.3, rise=1, fall=1, jitter=0.0)


async def _samples(port: int, check: CheckConfig, n: int,
                   between=None) -> tuple[list[ProbeResult], set[int]]:
    """n samples from one scheduled probe, and the descriptors its checks ended with."""
    results: list[ProbeResult] = []
    fds: set[int] = set()

    def sampled(target, check, result) -> None:
        results.append(result)
        spare = next(iter(s._probes.values())).plan.spare  # kept before `done` runs
        fds.add(spare.fileno() if spare is not None else -1)

    s = Scheduler(on_sample=sampled)
    s.add("k", Target(LOCAL, port), check)
    while len(results) < n:
        await asyncio.sleep(0.005)
        if between is not None:
            await between(len(results))
    await s.close()
    return results, fds


def test_one_socket_serves_every_check_and_each_ends_with_a_reset():
    peers: list[str] = []

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        try:
            while await reader.read(65536):
                pass
            peers.append("eof")
        except ConnectionResetError:
            peers.append("reset")

    async def go():
        async with adv.serve(handler) as port:
            out = await _samples(port, CheckConfig(type="http", expect_body="ok", **FAST), 5)
            await asyncio.sleep(0.1)
            return out

    results, fds = run(go())
    assert all(r.ok and r.reason == "HTTP 200 OK, body matched 'ok'" for r in results), results
    assert len(fds) == 1 and -1 not in fds, fds  # one descriptor, connected again
    assert peers and set(peers) == {"reset"}, peers


def test_kept_socket_recovers_after_refused_and_connect_timeouts():
    """Refused, then a listener that never answers the SYN (full backlog), then a
    healthy server: each check's verdict is its own."""
    port = adv.closed_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    fillers: list[socket.socket] = []
    listener: list[asyncio.AbstractServer] = []

    async def between(n: int) -> None:
        if n == 2 and not fillers:  # a listener with a full backlog: SYNs go unanswered
            srv.bind((LOCAL, port))
            srv.listen(0)
            for _ in range(8):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex((LOCAL, port))
                fillers.append(s)
        if n == 4 and not listener:  # then a real server on the same port
            for s in fillers:
                s.close()
            srv.close()

            async def ok(reader, writer):
                await reader.read(100)
                writer.write(b"pong")
                await writer.drain()
                await asyncio.sleep(1)

            listener.append(await asyncio.start_server(ok, LOCAL, port, reuse_address=True))

    async def go():
        check = CheckConfig(type="tcp", send=b"ping", expect="pong", **FAST)
        try:
            return await _samples(port, check, 7, between)
        finally:
            for server in listener:
                server.close()

    results, _fds = run(go())
    reasons = [r.reason for r in results]
    assert reasons[:2] == ["connection refused"] * 2, reasons
    assert "timeout after 0.3s connecting" in reasons[2:4], reasons
    assert reasons[-1] == "reply matched 'pong'", reasons


def test_removed_probe_closes_its_kept_socket():
    async def go():
        async with adv.serve(adv.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as port:
            results: list[ProbeResult] = []
            s = Scheduler(on_sample=lambda t, c, r: results.append(r))
            s.add("k", Target(LOCAL, port), CheckConfig(type="http", **FAST))
            while not results:
                await asyncio.sleep(0.005)
            plan = s._probes[next(iter(s._probes))].plan
            for _ in range(100):  # the next check may be in flight
                if plan.spare is not None:
                    break
                await asyncio.sleep(0.001)
            sock = plan.spare
            s.remove("k")
            await s.close()
            return sock

    sock = run(go())
    assert sock is not None and sock.fileno() == -1  # closed


REPLIES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnope!",
    b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"x" * 40,
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok",  # incomplete body
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200\r\n",
    b"HTTP/1.1 2",
    b"garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nbad header\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH:  002 \r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX-Content-Length: 5\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX-Content-Length: 5\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\nServer: x\nContent-Length: 2\n\nok",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 404 \r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 22 Nov 2026 11:17:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
]
CHECKS = [
    CheckConfig(type="http"),
    CheckConfig(type="http", expect_status=((200, 299),)),
    CheckConfig(type="http", expect_body="ok"),
    CheckConfig(type="http", expect_body="ok$"),
    CheckConfig(type="http", expect_body="zzz", max_body=16),
]


def _full(check: CheckConfig, data: bytes):
    try:
        return http.HttpJudge(check).feed(data)
    except ProbeError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: f"{c.expect_body}/{c.max_body}")
@pytest.mark.parametrize("data", REPLIES)
def test_quick_judge_agrees_with_the_full_judge(check, data):
    quick = http.quick_judge(check)
    assert quick is not None
    verdict = quick(data)
    if verdict is not None:  # None hands the reply to the full judge
        assert verdict == _full(check, data)


def test_quick_judge_reuses_its_status_cache_without_mixing_replies():
    quick = http.quick_judge(CHECKS[2])
    for _ in range(2):  # the second pass answers from the per-status-line cache
        for data in REPLIES:
            verdict = quick(data)
            if verdict is not None:
                assert verdict == _full(CHECKS[2], data), data


def test_quick_judge_takes_the_usual_reply():
    """The fast path is used for the common case (else it would only cost)."""
    data = REPLIES[0]
    assert http.quick_judge(CHECKS[2])(data) == (True, "HTTP 200 OK, body matched 'ok'")
    assert http.quick_judge(CHECKS[0])(data) == (True, "HTTP 200 OK")
    assert http.quick_judge(CHECKS[2])(REPLIES[-1]) == (True, "HTTP 200 OK, body matched 'ok'")
    assert http.quick_judge(CheckConfig(type="http", method="HEAD", expect_body="x")) is None
