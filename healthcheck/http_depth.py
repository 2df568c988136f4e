"""Sans-IO judging of the deeper HTTP checks: keepalived's url blocks, each with its own
status, `digest` (MD5 of the whole body, compared as hex) and regex, which `regex_no_match`
turns into a pattern the body must not match.

The usual check (one URL, status and maybe a regex) keeps the cheap callback path of
`healthcheck.http`; a check that needs any of this runs as a coroutine, one connection
per URL, and passes only when every URL does.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from director.config.model import HttpUrl
from healthcheck import http_parse as hp
from healthcheck._io import ProbeError, Verdict, compile_bytes
from healthcheck.result import format_ranges, status_in

if TYPE_CHECKING:
    from director.config.model import CheckConfig


def needed(check: CheckConfig) -> bool:
    """Whether the check needs this path rather than the single-request one."""
    return bool(check.urls) or check.digest is not None or check.regex_no_match


def urls_of(check: CheckConfig) -> tuple[HttpUrl, ...]:
    """The URLs to request, in order: `urls`, or the check's own single one."""
    if check.urls:
        return check.urls
    return (HttpUrl(check.path, check.expect_status, check.expect_body, check.regex_no_match, check.digest),)


class UrlJudge:
    """One URL's response as its bytes arrive: the status, then (when the URL looks at the
    body) the body decoded and bounded by `limit`, judged once it is complete."""

    def __init__(self, url: HttpUrl, method: str, limit: int) -> None:
        self.url, self.method, self.limit = url, method.upper(), limit
        self.phase = "reading headers"
        self.buf = b""
        self.body: hp.Body | None = None
        self.seen = bytearray()
        self.md5 = hashlib.md5(usedforsecurity=False) if url.digest is not None else None
        self.status = ""

    def feed(self, data: bytes) -> Verdict | None:
        """`data` as read; b"" at the end of the stream (then always a verdict, or ProbeError)."""
        try:
            return self._body(data) if self.body is not None else self._head(data)
        except hp.HttpParseError as exc:
            raise ProbeError(f"bad HTTP response: {exc}") from None

    def _head(self, data: bytes) -> Verdict | None:
        if not data:
            raise ProbeError("connection closed inside response headers" if self.buf
                             else "connection closed before response headers")
        self.buf += data
        while True:
            parsed = hp.parse_head(self.buf)
            if parsed is None:
                return None
            head, used = parsed
            self.buf = self.buf[used:]
            if not 100 <= head.status < 200 or head.status == 101:
                break  # interim responses are skipped
        self.status = head.summary
        if not status_in(head.status, self.url.expect_status):
            return False, f"status {self.status} not in {format_ranges(self.url.expect_status)}"
        if self.url.expect_body is None and self.url.digest is None:
            return True, f"HTTP {self.status}"
        self.phase = "reading body"
        self.body = hp.Body(head, self.method)
        rest, self.buf = self.buf, b""
        return self._take(self.body.feed(rest))

    def _body(self, data: bytes) -> Verdict | None:
        assert self.body is not None
        if not data:
            self.body.eof()
            return self._verdict()
        return self._take(self.body.feed(data))

    def _take(self, chunk: bytes) -> Verdict | None:
        assert self.body is not None
        if len(self.seen) + len(chunk) > self.limit:
            if self.md5 is not None:  # keepalived digests the whole body: a cut one cannot match
                return False, f"body longer than {self.limit} bytes (max_body): digest not computed"
            self.seen += chunk[: self.limit - len(self.seen)]
            return self._verdict()
        self.seen += chunk
        if self.md5 is not None:
            self.md5.update(chunk)
        return self._verdict() if self.body.done else None

    def _verdict(self) -> Verdict:
        url = self.url
        if self.md5 is not None and self.md5.hexdigest() != url.digest:
            return False, f"body digest {self.md5.hexdigest()} is not {url.digest}"
        reason = f"HTTP {self.status}" + (", digest matched" if url.digest else "")
        if url.expect_body is None:
            return True, reason
        matched = compile_bytes(url.expect_body).search(self.seen) is not None
        if matched != url.regex_no_match:
            return True, reason + (f", body did not match {url.expect_body!r}" if url.regex_no_match
                                   else f", body matched {url.expect_body!r}")
        return False, (f"body matched {url.expect_body!r} (regex_no_match)" if url.regex_no_match
                       else f"body did not match {url.expect_body!r}")
