"""TCP and HTTP(S) probes against nginx and against hostile servers."""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import pytest

from director.config.model import CheckConfig
from healthcheck import http, tcp
from healthcheck.result import Target
from tests.healthcheck import adversaries as adv
from tests.healthcheck.conftest import run

TICK = 0.1  # what "within its deadline" allows on top of the timeout
SLACK = 0.25  # wall clock, measured from outside the loop on a possibly busy CI box


def local(port: int) -> Target:
    return Target("127.0.0.1", port)


def within(result, timeout: float, started: float) -> None:
    assert result.latency <= timeout + TICK, result
    assert time.monotonic() - started <= timeout + SLACK, result


async def against(handler, module, check: CheckConfig):
    async with adv.serve(handler) as port:
        started = time.monotonic()
        result = await module.probe(local(port), check)
        within(result, check.timeout, started)
        return result


# --- TCP ---------------------------------------------------------------------


def test_tcp_connect_to_nginx(nginx):
    result = run(tcp.probe(local(nginx[0]), CheckConfig(type="tcp")))
    assert result.ok and result.reason == "connected"


def test_tcp_refused():
    result = run(tcp.probe(local(adv.closed_port()), CheckConfig(type="tcp")))
    assert not result.ok and result.reason == "connection refused"


def test_tcp_send_expect_against_nginx(nginx):
    check = CheckConfig(type="tcp", send=b"GET /health HTTP/1.0\r\n\r\n", expect=r"status: ok")
    assert run(tcp.probe(local(nginx[0]), check)).ok
    check = CheckConfig(type="tcp", send=b"GET /fail HTTP/1.0\r\n\r\n", expect=r"^HTTP/1\.1 200")
    result = run(tcp.probe(local(nginx[0]), check))
    assert not result.ok
    assert result.reason == "reply did not match '^HTTP/1\\\\.1 200' (connection closed)"


def test_tcp_expect_times_out_on_silent_server():
    check = CheckConfig(type="tcp", timeout=0.5, send=b"PING\r\n", expect="PONG")
    result = run(against(adv.hang, tcp, check))
    assert not result.ok and result.reason == "timeout after 0.5s waiting for reply"


def test_tcp_expect_bounded_read():
    check = CheckConfig(type="tcp", timeout=2.0, expect="never", max_body=1000)
    counter = [0]
    result = run(against(adv.huge_body(counter), tcp, check))
    assert result.reason == "reply did not match 'never' in first 1000 bytes"


# --- HTTP against nginx ------------------------------------------------------------


def test_http_ok(nginx):
    check = CheckConfig(type="http", path="/health", expect_body=r"status: ok")
    result = run(http.probe(local(nginx[0]), check))
    assert result.ok, result
    assert result.reason == "HTTP 200 OK, body matched 'status: ok'"


def test_http_status_not_expected(nginx):
    result = run(http.probe(local(nginx[0]), CheckConfig(type="http", path="/fail")))
    assert not result.ok
    assert result.reason == "status 503 Service Temporarily Unavailable not in [200]"


def test_http_status_ranges(nginx):
    check = CheckConfig(type="http", path="/moved", expect_status=((200, 200), (300, 399)))
    assert run(http.probe(local(nginx[0]), check)).ok
    check = CheckConfig(type="http", path="/moved", expect_status=((200, 299),))
    assert run(http.probe(local(nginx[0]), check)).reason.endswith("not in [200-299]")


def test_http_body_mismatch(nginx):
    check = CheckConfig(type="http", path="/health", expect_body="ok$x")
    result = run(http.probe(local(nginx[0]), check))
    assert not result.ok and result.reason == "body did not match 'ok$x'"


def test_http_host_header(nginx):
    check = CheckConfig(type="http", path="/host", host="www.example.test", expect_body="host=www")
    assert run(http.probe(local(nginx[0]), check)).ok


def test_http_head(nginx):
    check = CheckConfig(type="http", method="HEAD", path="/health")
    assert run(http.probe(local(nginx[0]), check)).ok


def test_https_without_verify(nginx):
    check = CheckConfig(type="https", path="/health", expect_body="ok")
    result = run(http.probe(local(nginx[1]), check))
    assert result.ok, result


def test_https_verify_fails_on_untrusted_cert(nginx):
    check = CheckConfig(type="https", path="/health", tls_verify=True, sni="health.test")
    result = run(http.probe(local(nginx[1]), check))
    assert not result.ok
    assert result.reason.startswith("TLS certificate verify failed: "), result


def test_https_verify_with_trusted_cert_and_sni(nginx, tls_cert, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_cert[0]))
    check = CheckConfig(type="https", path="/health", tls_verify=True, sni="health.test")
    assert run(http.probe(local(nginx[1]), check)).ok
    # the address itself is in the certificate too
    check = CheckConfig(type="https", path="/health", tls_verify=True)
    assert run(http.probe(local(nginx[1]), check)).ok
    check = CheckConfig(type="https", path="/health", tls_verify=True, sni="other.test")
    result = run(http.probe(local(nginx[1]), check))
    assert not result.ok and "hostname mismatch" in result.reason, result


def test_https_to_plain_port_fails_cleanly(nginx):
    result = run(http.probe(local(nginx[0]), CheckConfig(type="https", timeout=1.0)))
    assert not result.ok and result.reason.startswith("TLS error"), result


# --- HTTP adversaries ------------------------------------------------------------


def test_http_refused():
    result = run(http.probe(local(adv.closed_port()), CheckConfig(type="http")))
    assert result.reason == "connection refused"


def test_http_accept_then_hang():
    result = run(against(adv.hang, http, CheckConfig(type="http", timeout=0.5)))
    assert result.reason == "timeout after 0.5s reading headers"


def test_https_accept_then_hang():
    result = run(against(adv.hang, http, CheckConfig(type="https", timeout=0.5)))
    assert result.reason == "timeout after 0.5s in TLS handshake"


def test_http_trickle_is_cut_at_the_deadline():
    result = run(against(adv.trickle, http, CheckConfig(type="http", timeout=1.0)))
    assert result.reason == "timeout after 1.0s reading headers"


def test_http_huge_body_read_is_bounded():
    counter = [0]
    check = CheckConfig(type="http", timeout=3.0, expect_body="needle", max_body=65536)

    async def go():
        tracemalloc.start()
        try:
            result = await against(adv.huge_body(counter), http, check)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return result, peak

    result, peak = run(go())
    assert result.reason == "body did not match 'needle' in first 65536 bytes"
    assert peak < 4 * 1024 * 1024, peak
    assert counter[0] < 10 * 1024 * 1024  # the server could not push it all


def test_http_huge_body_not_read_without_expect_body():
    counter = [0]
    result = run(against(adv.huge_body(counter), http, CheckConfig(type="http", timeout=3.0)))
    assert result.ok and result.reason == "HTTP 200 OK"


def test_http_rst_after_accept():
    result = run(against(adv.rst_after_accept, http, CheckConfig(type="http", timeout=1.0)))
    assert not result.ok
    assert result.reason in ("connection reset by peer", "connection closed before response headers")


def test_http_garbage_status_line():
    result = run(against(adv.garbage_status, http, CheckConfig(type="http", timeout=1.0)))
    assert not result.ok and result.reason.startswith("bad HTTP response: "), result


def test_http_endless_headers_are_bounded():
    check = CheckConfig(type="http", timeout=2.0, expect_body="ok")
    result = run(against(adv.endless_headers, http, check))
    assert not result.ok
    assert result.reason == "bad HTTP response: response head exceeds 16384 bytes", result
    # a status-only check judges the status line and reads no further
    result = run(against(adv.endless_headers, http, CheckConfig(type="http", timeout=2.0)))
    assert result.ok and result.reason == "HTTP 200 OK"


def test_http_interim_response_is_skipped():
    data = b"HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
    result = run(against(adv.reply(data), http, CheckConfig(type="http", timeout=0.5)))
    assert result.reason == "status 503 Busy not in [200]"
    check = CheckConfig(type="http", timeout=0.5, expect_body="x")
    result = run(against(adv.reply(data), http, check))
    assert result.reason == "status 503 Busy not in [200]"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", "timeout after 0.5s reading body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad HTTP response: "),
        (b"HTTP/1.1 999999 Huh\r\n\r\n", "bad HTTP response: "),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "bad HTTP response: "),
        (b"\x00\xff\x16\x03" * 100, "bad HTTP response: "),
    ],
)
def test_http_malformed_replies(data, reason):
    check = CheckConfig(type="http", timeout=0.5, expect_body="ok")
    result = run(against(adv.reply(data), http, check))
    assert not result.ok and result.reason.startswith(reason), result


def test_http_chunked_body_matches():
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    result = run(against(adv.reply(data), http, CheckConfig(type="http", expect_body="^ok$")))
    assert result.ok, result


def test_ipv6_loopback():
    async def go():
        server = await asyncio.start_server(lambda r, w: w.close(), "::1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await tcp.probe(Target("::1", port), CheckConfig(type="tcp"))

    assert run(go()).ok


def test_end_anchored_body_regex_waits_for_the_whole_body():
    async def split_body(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"ay")
        await writer.drain()

    check = CheckConfig(type="http", timeout=1.0, expect_body="ok$")
    result = run(against(split_body, http, check))
    assert not result.ok and result.reason == "body did not match 'ok$'"
    check = CheckConfig(type="http", timeout=1.0, expect_body="okay$")
    assert run(against(split_body, http, check)).ok
