"""The daemon runs on uvloop: every probe type and the scheduler, on uvloop, for real."""

from __future__ import annotations

import asyncio

import uvloop

from director.config.model import CheckConfig
from healthcheck.result import Target
from healthcheck.run_once import probe_all
from healthcheck.scheduler import Scheduler
from tests.healthcheck import adversaries as adv

LOCAL = "127.0.0.1"


def test_all_probe_types_on_uvloop(nginx, kamailio):
    sip_port, sip404 = kamailio(200, "OK"), kamailio(404, "Not Found")
    pairs = [
        (Target(LOCAL, nginx[0]), CheckConfig(type="tcp")),
        (Target(LOCAL, nginx[0]), CheckConfig(type="tcp", send=b"GET /health HTTP/1.0\r\n\r\n",
                                              expect="status: ok")),
        (Target(LOCAL, nginx[0]), CheckConfig(type="http", path="/health", expect_body="ok")),
        (Target(LOCAL, nginx[1]), CheckConfig(type="https", path="/health", expect_body="ok",
                                              sni="health.test")),
        (Target(LOCAL, sip_port), CheckConfig(type="sip")),
        (Target(LOCAL, sip_port), CheckConfig(type="sip", transport="tcp")),
        (Target(LOCAL, 1), CheckConfig(type="exec", command=("/bin/sh", "-c", "exit 0"))),
        (Target(LOCAL, 1), CheckConfig(type="none")),
        (Target(LOCAL, nginx[0]), CheckConfig(type="http", path="/fail")),
        (Target(LOCAL, sip404), CheckConfig(type="sip")),
        (Target(LOCAL, adv.closed_port()), CheckConfig(type="http")),
        (Target(LOCAL, 1), CheckConfig(type="exec", timeout=0.3,
                                       command=("/bin/sh", "-c", "sleep 5"))),
    ]
    results = uvloop.run(probe_all(pairs))
    oks = [r.ok for r in results]
    assert oks == [True] * 8 + [False] * 4, results
    assert results[9].reason == "SIP 404 Not Found"
    assert results[10].reason == "connection refused"
    assert results[11].reason.startswith("timeout after 0.3s")


def test_adversaries_on_uvloop():
    async def go():
        out = []
        for handler, check in [
            (adv.hang, CheckConfig(type="http", timeout=0.3)),
            (adv.trickle, CheckConfig(type="http", timeout=0.5)),
            (adv.garbage_status, CheckConfig(type="http", timeout=0.5)),
            (adv.huge_body([0]), CheckConfig(type="http", timeout=2, expect_body="zz")),
        ]:
            async with adv.serve(handler) as port:
                out.append((await probe_all([(Target(LOCAL, port), check)]))[0].reason)
        return out

    reasons = uvloop.run(go())
    assert reasons[0] == "timeout after 0.3s reading headers"
    assert reasons[1] == "timeout after 0.5s reading headers"
    assert reasons[2].startswith("bad HTTP response: illegal status line")
    assert reasons[3] == "body did not match 'zz' in first 65536 bytes"


def test_scheduler_on_uvloop(nginx):
    async def go():
        events = []
        s = Scheduler(lambda k, up, r: events.append((k, up)))
        check = CheckConfig(type="http", path="/health", interval=0.05, rise=2, jitter=0.0)
        s.add("a", Target(LOCAL, nginx[0]), check)
        s.add("b", Target(LOCAL, nginx[0]), check)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3
        while len(events) < 2 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        snap = s.snapshot("a")
        await s.close()
        return events, snap

    events, snap = uvloop.run(go())
    assert sorted(events) == [("a", True), ("b", True)]
    assert snap.up and snap.reason == "HTTP 200 OK" and snap.shared_by == 2
