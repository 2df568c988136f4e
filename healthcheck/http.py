"""HTTP and HTTPS probe: one request, status in the expected ranges, optional body regex.

`http_parse` (sans-IO) builds the request and parses the response; `HttpJudge`
(sans-IO too) turns response bytes into a verdict as they arrive. Plain HTTP moves
bytes with a callback state machine on the shared epoll (`_poll`, no task per
check); HTTPS needs the loop's TLS transport and runs as a coroutine. Either way
one deadline covers the whole check. The head is bounded by
`http_parse.MAX_HEAD`, the body by `check.max_body`; the body is not read at all
unless `expect_body` is set.
"""

from __future__ import annotations

import base64
import functools
import os
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from healthcheck import http_depth
from healthcheck import http_parse as hp
from healthcheck._io import Phase, ProbeError, Verdict, compile_bytes, open_stream, run_probe
from healthcheck._poll import Plan, run
from healthcheck.result import ProbeResult, Target, format_ranges, status_in

if TYPE_CHECKING:
    from director.config.model import CheckConfig

USER_AGENT = "directord-healthcheck"


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    if http_depth.needed(check):
        return await run_probe(check, lambda phase: check_urls(target, check, phase))
    if check.type == "https":
        return await run_probe(check, lambda phase: _check_tls(target, check, phase))
    return await run(plan(target, check))


def host_header(target: Target, check: CheckConfig, tls: bool) -> str:
    if check.host:
        return check.host
    default = 443 if tls else 80
    return target.host if target.port == default else target.endpoint


@functools.lru_cache(maxsize=8)
def _ssl_context_cached(verify: bool, cafile: str | None, cert: str | None = None,
                        key: str | None = None) -> ssl.SSLContext:
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=cafile)
    if cert is not None:
        ctx.load_cert_chain(cert, key)  # a server asking for a client certificate gets this one
    return ctx


def ssl_context(verify: bool, check: CheckConfig | None = None) -> ssl.SSLContext:
    """Contexts are costly to build (CA bundle load): one per setting, reused.

    With verify on, trust comes from `tls_ca`, else the system store or SSL_CERT_FILE. A
    client certificate that cannot be loaded is the check's failure, with the reason.
    """
    cafile = (check.tls_ca if check and check.tls_ca else os.environ.get("SSL_CERT_FILE")) if verify else None
    cert, key = (check.tls_cert, check.tls_key) if check is not None else (None, None)
    try:
        return _ssl_context_cached(verify, cafile, cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ProbeError(f"bad TLS files: {exc}") from None


def server_name(target: Target, check: CheckConfig) -> str:
    """SNI / name to verify: `sni`, else the Host header, else the address (no SNI sent)."""
    return check.sni or check.host or target.address


def request_bytes(target: Target, check: CheckConfig, tls: bool, path: str | None = None,
                  host: str | None = None) -> bytes:
    """The same bytes go out every interval: built once per (method, path, Host, the rest)."""
    try:
        return _request(check.method, path or check.path, host or host_header(target, check, tls),
                        check.http_version, check.headers, authorization(check))
    except ValueError as exc:
        raise ProbeError(f"bad check config: {exc}") from None


def authorization(check: CheckConfig) -> str | None:
    """Basic authentication (RFC 7617) from http_user / http_password."""
    if check.http_user is None:
        return None
    return "Basic " + _basic(check.http_user, check.http_password)


@functools.lru_cache(maxsize=64)
def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@functools.lru_cache(maxsize=16384)
def _request(method: str, path: str, host: str, version: str = "1.1", headers: tuple[tuple[str, str], ...] = (),
             auth: str | None = None) -> bytes:
    return hp.build_request(method, path, host, USER_AGENT, version, headers, auth)


def plan(target: Target, check: CheckConfig) -> Plan:
    """Plain HTTP as a callback check on the shared epoll (`_poll`): no task per check."""
    try:
        request = request_bytes(target, check, False)
    except ProbeError as exc:
        return Plan(target, check, error=str(exc))
    return Plan(target, check, request=request, judge=functools.partial(HttpJudge, check),
                quick=quick_judge(check), send_phase="sending request",
                read_phase="reading headers")


def quick_judge(check: CheckConfig) -> Callable[[bytes], Verdict | None] | None:
    """A judge of the usual whole reply in one read, without an `HttpJudge` per check.

    It answers what `HttpJudge(check).feed(data)` would, or None (anything unusual:
    incomplete, interim, chunked, malformed...), and then the full judge decides.
    """
    expect, limit, ranges = check.expect_body, check.max_body, check.expect_status
    if expect is None:
        def status_only(data: bytes) -> Verdict | None:
            try:
                line = hp.parse_status_line(data)
            except hp.HttpParseError:
                return None  # the judge says why
            if line is None or 100 <= line[0] < 200:
                return None
            return _status_verdict(line[0], line[1], ranges)
        return status_only
    if check.method.upper() == "HEAD":
        return None
    pattern = compile_bytes(expect)
    # the same reply comes back every interval: its status line's verdict, and the
    # reason if the body matches, are worked out once per distinct status line
    statuses: dict[tuple[bytes, bytes | None], tuple[Verdict, str]] = {}

    def whole(data: bytes) -> Verdict | None:
        raw = hp.parse_simple_raw(data)
        if raw is None:
            return None
        code, text, body = raw
        known = statuses.get((code, text))
        if known is None:
            verdict = _status_verdict(int(code), (text or b"").decode("latin-1").strip(), ranges)
            if len(statuses) >= 16:
                statuses.clear()
            known = statuses[code, text] = verdict, _matched(verdict[1][5:], expect)
        verdict, matched = known
        if not verdict[0]:
            return verdict
        seen = body[:limit]
        if pattern.search(seen):
            return True, matched
        return _unmatched(seen, expect, limit, True)
    return whole


async def _check_tls(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    request = request_bytes(target, check, True)
    ctx = ssl_context(bool(check.tls_verify), check)
    limit = max(check.max_body, hp.MAX_HEAD)
    stream = await open_stream(target, phase, limit, ctx, server_name(target, check), source=check)
    try:
        phase.name = "sending request"
        await stream.write(request)
        judge = HttpJudge(check)
        while True:
            phase.name = judge.phase
            verdict = judge.feed(await stream.read())
            if verdict is not None:
                return verdict
    finally:
        stream.close()


async def check_urls(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    """Each URL on a connection of its own, in order; the first that fails is the verdict,
    named by its path when there are several. One deadline covers them all."""
    tls = check.type == "https"
    ctx = ssl_context(bool(check.tls_verify), check) if tls else None
    urls = http_depth.urls_of(check)
    reasons = []
    for url in urls:
        request = request_bytes(target, check, tls, url.path, url.host)
        stream = await open_stream(target, phase, max(check.max_body, hp.MAX_HEAD), ctx,
                                   server_name(target, check) if tls else None)
        try:
            phase.name = "sending request"
            await stream.write(request)
            judge = http_depth.UrlJudge(url, check.method, check.max_body)
            verdict = None
            while verdict is None:
                phase.name = judge.phase
                verdict = judge.feed(await stream.read())
        finally:
            stream.close()
        ok, reason = verdict
        if not ok:
            return False, f"{url.path}: {reason}" if len(urls) > 1 else reason
        reasons.append(reason)
    return True, reasons[0] if len(urls) == 1 else f"{len(urls)} URLs passed ({reasons[-1]})"


class HttpJudge:
    """Sans-IO: judges a response as its bytes arrive, and stops as soon as it can.

    Without `expect_body` the status line is enough (headers are not even read);
    with it the head is parsed (bounded by `MAX_HEAD`) and the body decoded and
    searched, at most `max_body` bytes. Interim (1xx) responses are skipped.
    """

    __slots__ = ("body", "buf", "check", "phase", "seen", "status")

    def __init__(self, check: CheckConfig) -> None:
        self.check = check
        self.phase = "reading headers"
        self.buf = b""
        self.body: hp.Body | None = None
        self.seen = bytearray()
        self.status = ""

    def feed(self, data: bytes) -> Verdict | None:
        """`data` as read; b"" at end of stream (always a verdict, or ProbeError)."""
        try:
            if self.body is not None:
                return self._body(data)
            if not data:
                raise ProbeError("connection closed inside response headers" if self.buf
                                 else "connection closed before response headers")
            self.buf += data
            return self._head() if self.check.expect_body is not None else self._status_only()
        except hp.HttpParseError as exc:
            raise ProbeError(f"bad HTTP response: {exc}") from None

    def _status_only(self) -> Verdict | None:
        buf = self.buf
        while buf:
            line = hp.parse_status_line(buf)
            if line is None:
                break
            if not 100 <= line[0] < 200 or line[0] == 101:
                return _status_verdict(line[0], line[1], self.check.expect_status)
            parsed = hp.parse_head(buf)  # an interim response: skip it whole
            if parsed is None:
                break
            buf = buf[parsed[1]:]
        self.buf = buf
        return None

    def _head(self) -> Verdict | None:
        check = self.check
        simple = hp.parse_simple(self.buf) if check.method.upper() != "HEAD" else None
        if simple is not None:  # the usual reply, whole: judged without a Head or Body
            ok, reason = _status_verdict(simple[0], simple[1], check.expect_status)
            if not ok:
                return ok, reason
            self.status = reason[5:]  # "HTTP 200 OK" -> "200 OK"
            return self._judge_seen(simple[2][: check.max_body], True)
        while True:
            parsed = hp.parse_head(self.buf)
            if parsed is None:
                return None
            head, used = parsed
            self.buf = self.buf[used:]
            if not 100 <= head.status < 200 or head.status == 101:
                break  # interim responses are skipped: the real one follows
        ok, reason = _status_verdict(head.status, head.reason, check.expect_status)
        if not ok:
            return ok, reason
        self.status = head.summary
        self.phase = "reading body"
        self.body = hp.Body(head, check.method.upper())
        rest, self.buf = self.buf, b""
        self.seen += self.body.feed(rest)[: check.max_body]
        return self._judge_body()

    def _body(self, data: bytes) -> Verdict | None:
        body, seen, expect = self.body, self.seen, self.check.expect_body
        if not data:
            body.eof()
            if compile_bytes(expect).search(seen):
                return True, _matched(self.status, expect)
            return False, f"body did not match {expect!r}"
        seen += body.feed(data)[: self.check.max_body - len(seen)]
        return self._judge_body()

    def _judge_body(self) -> Verdict | None:
        return self._judge_seen(self.seen, self.body.done)

    def _judge_seen(self, seen: bytes | bytearray, body_done: bool) -> Verdict | None:
        expect, limit = self.check.expect_body, self.check.max_body
        # A pattern anchored at the end must not match a prefix of the body that
        # happens to end where a read did; judge it only once the body is complete.
        complete = body_done or len(seen) >= limit
        if (complete or _partial_ok(expect)) and compile_bytes(expect).search(seen):
            return True, _matched(self.status, expect)
        return _unmatched(seen, expect, limit, body_done)


def _unmatched(seen: bytes | bytearray, expect: str, limit: int,
               body_done: bool) -> Verdict | None:
    """The verdict once `expect` did not match what was seen (None: read on)."""
    if len(seen) >= limit:
        return False, f"body did not match {expect!r} in first {limit} bytes"
    if body_done:
        return False, f"body did not match {expect!r}"
    return None


@functools.lru_cache(maxsize=256)
def _status_verdict(code: int, reason: str, expect: tuple[tuple[int, int], ...]) -> Verdict:
    """Built once per distinct status: the same reply comes back every interval."""
    status = f"{code} {reason}".rstrip()
    if not status_in(code, expect):
        return False, f"status {status} not in {format_ranges(expect)}"
    return True, f"HTTP {status}"


@functools.lru_cache(maxsize=256)
def _matched(status: str, expect: str) -> str:
    return f"HTTP {status}, body matched {expect!r}"


@functools.lru_cache(maxsize=256)
def _partial_ok(expect: str) -> bool:
    return "$" not in expect and "\\Z" not in expect
