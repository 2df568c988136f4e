"""`probe_all`: every configured check once, against real servers."""

from __future__ import annotations

from director.config.model import CheckConfig
from healthcheck.result import Target
from healthcheck.run_once import probe_all
from tests.healthcheck import adversaries as adv
from tests.healthcheck.conftest import run


def test_probe_all_mixed(nginx, kamailio):
    sip_port = kamailio(200, "OK")
    http = CheckConfig(type="http", path="/health")
    pairs = [
        (Target("127.0.0.1", nginx[0]), http),
        (Target("127.0.0.1", nginx[1]), CheckConfig(type="https", path="/fail")),
        (Target("127.0.0.1", sip_port), CheckConfig(type="sip")),
        (Target("127.0.0.1", adv.closed_port()), CheckConfig(type="tcp")),
        (Target("127.0.0.1", 1), CheckConfig(type="exec", command=("/bin/true",))),
        (Target("127.0.0.1", 1), CheckConfig(type="none")),
        (Target("127.0.0.1", nginx[0]), http),
    ]
    results = run(probe_all(pairs))
    assert [r.ok for r in results] == [True, False, True, False, True, True, True]
    assert results[1].reason == "status 503 Service Temporarily Unavailable not in [200]"
    assert results[3].reason == "connection refused"
    assert results[0] is results[6]  # identical pairs probed once


def test_probe_all_concurrency_and_empty():
    calls = []

    async def probe(target, check):
        calls.append(target)
        from healthcheck.result import ProbeResult

        return ProbeResult(True, 0.0, "ok")

    pairs = [(Target("127.0.0.1", p), CheckConfig()) for p in range(1, 50)]
    assert len(run(probe_all(pairs, concurrency=3, probe=probe))) == 49
    assert len(calls) == 49
    assert run(probe_all([])) == []
