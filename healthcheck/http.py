"""HTTP and HTTPS probe: one request, status in the expected ranges, optional body regex.

h11 parses the response (sans-IO); this module only moves bytes under the check's
single deadline. Headers are bounded by h11's incomplete-event limit, the body by
`check.max_body`; the body is not read at all unless `expect_body` is set.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import TYPE_CHECKING

import h11

from healthcheck._io import (
    Phase,
    StreamProtocol,
    Verdict,
    closed,
    compile_bytes,
    open_stream,
    run_probe,
)
from healthcheck.result import ProbeResult, Target, format_ranges, status_in

if TYPE_CHECKING:
    from director.config import CheckConfig

MAX_HEADER_BYTES = 16384
USER_AGENT = "directord-healthcheck"


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    tls = check.type == "https"
    return await run_probe(check, lambda phase: _check(target, check, phase, tls))


def host_header(target: Target, check: CheckConfig, tls: bool) -> str:
    if check.host:
        return check.host
    default = 443 if tls else 80
    return target.host if target.port == default else target.endpoint


@functools.lru_cache(maxsize=8)
def _ssl_context_cached(verify: bool, cafile: str | None) -> ssl.SSLContext:
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=cafile)


def ssl_context(verify: bool) -> ssl.SSLContext:
    """Contexts are costly to build (CA bundle load): one per setting, reused.

    With verify on, trust comes from the system store or SSL_CERT_FILE.
    """
    return _ssl_context_cached(verify, os.environ.get("SSL_CERT_FILE") if verify else None)


def server_name(target: Target, check: CheckConfig) -> str:
    """SNI / name to verify: `sni`, else the Host header, else the address (no SNI sent)."""
    return check.sni or check.host or target.address


def build_request(target: Target, check: CheckConfig, tls: bool) -> tuple[h11.Connection, bytes]:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    request = h11.Request(
        method=check.method,
        target=check.path,
        headers=[
            ("Host", host_header(target, check, tls)),
            ("User-Agent", USER_AGENT),
            ("Accept", "*/*"),
            ("Connection", "close"),
        ],
    )
    return conn, conn.send(request) + conn.send(h11.EndOfMessage())


async def _check(target: Target, check: CheckConfig, phase: Phase, tls: bool) -> Verdict:
    ctx = ssl_context(check.tls_verify) if tls else None
    transport, proto = await open_stream(
        target, phase, max(check.max_body, MAX_HEADER_BYTES), ctx, server_name(target, check)
    )
    try:
        phase.name = "sending request"
        conn, request = build_request(target, check, tls)
        transport.write(request)
        phase.name = "reading headers"
        response = await _response(conn, proto)
        if isinstance(response, str):
            return False, response
        status = f"{response.status_code} {response.reason.decode('latin-1', 'replace')}".strip()
        if not status_in(response.status_code, check.expect_status):
            return False, f"status {status} not in {format_ranges(check.expect_status)}"
        if check.expect_body is None:
            return True, f"HTTP {status}"
        phase.name = "reading body"
        return await _body(conn, proto, check.expect_body, check.max_body, status)
    finally:
        closed(transport)


async def _next_event(conn: h11.Connection, proto: StreamProtocol) -> object:
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            return f"bad HTTP response: {exc}"
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await proto.read())


async def _response(conn: h11.Connection, proto: StreamProtocol) -> h11.Response | str:
    """The final response head, or a reason why there is none."""
    while True:
        event = await _next_event(conn, proto)
        if isinstance(event, str):
            return event
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            return event
        if isinstance(event, h11.ConnectionClosed):
            return "connection closed before response headers"
        return f"unexpected HTTP event {type(event).__name__}"


async def _body(
    conn: h11.Connection, proto: StreamProtocol, expect: str, limit: int, status: str
) -> Verdict:
    pattern = compile_bytes(expect)
    body = bytearray()
    while True:
        event = await _next_event(conn, proto)
        if isinstance(event, str):
            return False, event
        if isinstance(event, h11.Data):
            body += event.data[: limit - len(body)]
            if pattern.search(body):
                return True, f"HTTP {status}, body matched {expect!r}"
            if len(body) >= limit:
                return False, f"body did not match {expect!r} in first {limit} bytes"
        else:  # EndOfMessage or ConnectionClosed
            return False, f"body did not match {expect!r}"
