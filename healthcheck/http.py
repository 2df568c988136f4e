"""HTTP and HTTPS probe: one request, status in the expected ranges, optional body regex.

`http_parse` (sans-IO) builds the request and parses the response; this module only
moves bytes under the check's single deadline. The head is bounded by
`http_parse.MAX_HEAD`, the body by `check.max_body`; the body is not read at all
unless `expect_body` is set.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import TYPE_CHECKING

from healthcheck import http_parse as hp
from healthcheck._io import Phase, ProbeError, Stream, Verdict, compile_bytes, open_stream, run_probe
from healthcheck.result import ProbeResult, Target, format_ranges, status_in

if TYPE_CHECKING:
    from director.config import CheckConfig

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


def request_bytes(target: Target, check: CheckConfig, tls: bool) -> bytes:
    """The same bytes go out every interval: built once per (method, path, Host)."""
    try:
        return _request(check.method, check.path, host_header(target, check, tls))
    except ValueError as exc:
        raise ProbeError(f"bad check config: {exc}") from None


@functools.lru_cache(maxsize=16384)
def _request(method: str, path: str, host: str) -> bytes:
    return hp.build_request(method, path, host, USER_AGENT)


async def _check(target: Target, check: CheckConfig, phase: Phase, tls: bool) -> Verdict:
    request = request_bytes(target, check, tls)
    ctx = ssl_context(check.tls_verify) if tls else None
    limit = max(check.max_body, hp.MAX_HEAD)
    stream = await open_stream(target, phase, limit, ctx, server_name(target, check))
    try:
        phase.name = "sending request"
        await stream.write(request)
        phase.name = "reading headers"
        if check.expect_body is None:
            code, reason = await _status_only(stream)
            status = f"{code} {reason}".rstrip()
            if not status_in(code, check.expect_status):
                return False, f"status {status} not in {format_ranges(check.expect_status)}"
            return True, f"HTTP {status}"
        head, rest = await _head(stream)
        status = head.summary
        if not status_in(head.status, check.expect_status):
            return False, f"status {status} not in {format_ranges(check.expect_status)}"
        phase.name = "reading body"
        body = hp.Body(head, check.method.upper())
        return await _body(stream, body, rest, check.expect_body, check.max_body, status)
    except hp.HttpParseError as exc:
        raise ProbeError(f"bad HTTP response: {exc}") from None
    finally:
        stream.close()


async def _status_only(stream: Stream) -> tuple[int, str]:
    """The final response's status line; interim (1xx) heads are skipped whole."""
    buf = b""
    while True:
        line = hp.parse_status_line(buf) if buf else None
        if line is not None:
            if not 100 <= line[0] < 200 or line[0] == 101:
                return line
            parsed = hp.parse_head(buf)
            if parsed is not None:
                buf = buf[parsed[1]:]
                continue
        data = await stream.read()
        if not data:
            raise ProbeError("connection closed before response headers"
                             if not buf else "connection closed inside response headers")
        buf += data


async def _head(stream: Stream) -> tuple[hp.Head, bytes]:
    """The final (non-1xx) response head and the bytes after it."""
    buf = b""
    while True:
        parsed = hp.parse_head(buf)
        if parsed is not None:
            head, used = parsed
            buf = buf[used:]
            if 100 <= head.status < 200 and head.status != 101:
                continue  # interim response: the real one follows
            return head, buf
        data = await stream.read()
        if not data:
            raise ProbeError("connection closed before response headers"
                             if not buf else "connection closed inside response headers")
        buf += data


async def _body(
    stream: Stream, body: hp.Body, rest: bytes, expect: str, limit: int, status: str
) -> Verdict:
    pattern = compile_bytes(expect)
    # A pattern anchored at the end must not match a prefix of the body that
    # happens to end where a read did; judge it only once the body is complete.
    partial_ok = "$" not in expect and "\\Z" not in expect
    seen = bytearray(body.feed(rest)[:limit])
    while True:
        complete = body.done or len(seen) >= limit
        if (partial_ok or complete) and pattern.search(seen):
            return True, f"HTTP {status}, body matched {expect!r}"
        if len(seen) >= limit:
            return False, f"body did not match {expect!r} in first {limit} bytes"
        if body.done:
            return False, f"body did not match {expect!r}"
        data = await stream.read()
        if not data:
            body.eof()
            if pattern.search(seen):
                return True, f"HTTP {status}, body matched {expect!r}"
            return False, f"body did not match {expect!r}"
        seen += body.feed(data)[: limit - len(seen)]
