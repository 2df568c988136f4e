"""HTTP/1.x client side, sans-IO: build the probe's request, parse the response.

Hand-written rather than h11 because a health checker runs this thousands of times
a second and needs only a strict subset: a status line, headers within a bound,
and the body framed by Content-Length, chunked encoding or the connection's end.
Anything else is an `HttpParseError` whose message says what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEAD = 16384  # status line + headers, bytes
MAX_CHUNK_LINE = 1024

_STATUS = re.compile(rb"HTTP/1\.[01] ([1-9]\d\d)(?: ([^\r\n]*))?\r?\n")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*\r?\n")
_HEADER_BLOCK = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*\r?\n)*\r?\n")
# the blank line that ends the head; a leading literal "\n" lets the regex engine
# scan fast (r"\r?\n\r?\n" is tried at every offset: 5x slower)
_HEAD_END = re.compile(rb"\n\r?\n")
_HEADER_PAIRS = re.compile(rb"([^:\r\n]+):[ \t]*([^\r\n]*)\r?\n")  # after validation
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")


class HttpParseError(ValueError):
    """The server's bytes are not an HTTP/1.x response we accept."""


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    reason: str
    headers: tuple[tuple[bytes, bytes], ...]  # names lower-cased

    def get(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]

    @property
    def summary(self) -> str:
        return f"{self.status} {self.reason}".strip()


def build_request(method: str, path: str, host: str, user_agent: str, version: str = "1.1",
                  headers: tuple[tuple[str, str], ...] = (), authorization: str | None = None) -> bytes:
    """The request bytes; refuses config that would inject headers. `headers` come after the
    probe's own; `authorization` is the whole value of an Authorization header."""
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"bad HTTP method {method!r}")
    if not path.startswith("/") or any(c in path for c in " \r\n\t\0"):
        raise ValueError(f"bad HTTP path {path!r}")
    if version not in ("1.0", "1.1"):
        raise ValueError(f"bad HTTP version {version!r}")
    extra = [("Authorization", authorization)] if authorization is not None else []
    lines = [f"{method} {path} HTTP/{version}", f"Host: {host}", f"User-Agent: {user_agent}", "Accept: */*",
             "Connection: close"]
    for name, value in [("Host", host), *extra, *headers]:
        if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"bad {name} header {value!r}")
    lines += [f"{name}: {value}" for name, value in (*extra, *headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


MAX_STATUS_LINE = 1024


def parse_status_line(buf: bytes | bytearray) -> tuple[int, str] | None:
    """(status, reason) once the first line is in; None if more is needed.

    Enough for a status-only verdict: the headers need not be read at all.
    """
    nl = buf.find(b"\n", 0, MAX_STATUS_LINE)
    if nl < 0:
        if len(buf) >= MAX_STATUS_LINE or not buf.startswith(b"HTTP/"[: len(buf)]):
            raise HttpParseError(f"illegal status line: {bytes(buf[:40])!r}")
        return None
    m = _STATUS.match(buf)
    if m is None or m.end() != nl + 1:
        raise HttpParseError(f"illegal status line: {bytes(buf[:40])!r}")
    return int(m.group(1)), (m.group(2) or b"").decode("latin-1").strip()


def parse_head(buf: bytes | bytearray, limit: int = MAX_HEAD) -> tuple[Head, int] | None:
    """(head, bytes consumed) once the head is complete; None if more is needed."""
    if not buf.startswith(b"HTTP/"[: len(buf)]):
        raise HttpParseError(f"illegal status line: {bytes(buf[:40])!r}")
    end = _HEAD_END.search(buf, 0, limit + 4)
    if end is None:
        if len(buf) > limit:
            raise HttpParseError(f"response head exceeds {limit} bytes")
        # a status line can be judged before the whole head is in
        if b"\n" in buf[:200] and not _STATUS.match(buf):
            raise HttpParseError(f"illegal status line: {bytes(buf[:40])!r}")
        return None
    head_bytes = bytes(buf[: end.end()])
    m = _STATUS.match(head_bytes)
    if m is None:
        raise HttpParseError(f"illegal status line: {head_bytes[:40]!r}")
    # validate every header line in one C-level match, then pick them out (a
    # Python loop per line was most of a check's parsing time)
    if _HEADER_BLOCK.fullmatch(head_bytes, m.end()) is None:
        _raise_bad_header(head_bytes, m.end(), end.start())
    pairs = _HEADER_PAIRS.findall(head_bytes, m.end())
    headers = tuple([(k.lower(), v.rstrip(b" \t")) for k, v in pairs])
    reason = (m.group(2) or b"").decode("latin-1").strip()
    return Head(int(m.group(1)), reason, headers), end.end()


def _raise_bad_header(head_bytes: bytes, pos: int, last: int) -> None:
    """Name the first header line that does not parse."""
    while pos <= last:  # the last header line ends inside the end match
        h = _HEADER.match(head_bytes, pos)
        if h is None:
            break
        pos = h.end()
    line = head_bytes[pos:].split(b"\n", 1)[0]
    raise HttpParseError(f"illegal header line: {line[:40]!r}")


# possessive quantifiers (*+, ++): no backtracking state per header line, and the
# same matches (a token has no ':', a value no CR or LF): ~25 % fewer instructions
_SIMPLE = re.compile(
    rb"HTTP/1\.[01] ([1-9]\d\d)(?: ([^\r\n]*+))?\r?\n"
    rb"((?:[!#$%&'*+.^_`|~0-9A-Za-z-]++:[^\r\n]*+\r?\n)*+)\r?\n")


def parse_simple(buf: bytes) -> tuple[int, str, bytes] | None:
    """(status, reason, body) when `buf` holds the usual health-check reply whole: a
    final status, one Content-Length, no Transfer-Encoding, and all the body bytes.

    None for anything else (incomplete, interim, chunked, malformed...): then
    `parse_head` and `Body` decide, with their errors. No Head, header tuple or
    Body per check; it accepts nothing they would judge otherwise.
    """
    raw = parse_simple_raw(buf)
    if raw is None:
        return None
    code, reason, body = raw
    return int(code), (reason or b"").decode("latin-1").strip(), body


def parse_simple_raw(buf: bytes) -> tuple[bytes, bytes | None, bytes] | None:
    """`parse_simple` with the status code and reason as the bytes on the wire (a
    caller may key a cache on them)."""
    m = _SIMPLE.match(buf)  # the status line and every header line, validated
    if m is None or m.end() > MAX_HEAD:
        return None
    code = m.group(1)
    if code[0] == 49 or code == b"204" or code == b"304":  # 1xx, or never a body
        return None
    # the one Content-Length, found by byte searches (not a regex: this runs once
    # per check); None when there is none, more than one, or any mention of
    # transfer-encoding (stricter than `Body`, which then decides)
    low = m.group(3).lower()
    if b"transfer-encoding" in low:
        return None
    if low.startswith(b"content-length:"):
        i = 0
    else:  # a header name starts a line
        i = low.find(b"\ncontent-length:") + 1
        if not i:
            return None
    if low.find(b"\ncontent-length:", i) >= 0:
        return None  # more than one
    length = _content_length(low[i + 15 : low.find(b"\n", i)].strip(b" \t\r"))
    if length is None:
        return None
    start = m.end()
    end = start + length
    if len(buf) < end:
        return None
    return code, m.group(2), buf[start:end]


MAX_LENGTH_DIGITS = 18  # an exabyte: more is a hostile header, and int() refuses over 4,300 digits


def _content_length(value: bytes) -> int | None:
    return int(value) if value.isdigit() and len(value) <= MAX_LENGTH_DIGITS else None


class Body:
    """Decodes the body that follows `head`: `feed` returns body bytes, `done` says end."""

    def __init__(self, head: Head, method: str) -> None:
        self.done = False
        self._buf = b""
        self._chunk_left = 0
        self._state = "data"
        self._left: int | None = None  # Content-Length bytes still to come
        te_parts: list[bytes] = []
        lengths: set[bytes] = set()
        for name, value in head.headers:  # one pass: this runs once per check
            if name == b"content-length":
                lengths.add(value)
            elif name == b"transfer-encoding":
                te_parts.append(value)
        te = b",".join(te_parts).lower()
        if method == "HEAD" or head.status in (204, 304) or 100 <= head.status < 200:
            self.done, self.mode = True, "none"
        elif te:
            if te.split(b",")[-1].strip() != b"chunked":
                self.mode = "close"
            else:
                self.mode, self._state = "chunked", "size"
        elif lengths:
            length = _content_length(next(iter(lengths))) if len(lengths) == 1 else None
            if length is None:
                raise HttpParseError(f"bad Content-Length {b', '.join(sorted(lengths))[:60]!r}")
            self.mode, self._left = "length", length
            self.done = self._left == 0
        else:
            self.mode = "close"

    def feed(self, data: bytes) -> bytes:
        if self.done or not data:
            return b""
        if self.mode == "close":
            return data
        if self.mode == "length":
            assert self._left is not None
            out = data[: self._left]
            self._left -= len(out)
            self.done = self._left == 0
            return out
        return self._chunked(data)

    def eof(self) -> None:
        """The connection ended: fine only if the framing says the body is complete."""
        if self.mode == "close":
            self.done = True
        if not self.done:
            raise HttpParseError("connection closed before the end of the body")

    def _chunked(self, data: bytes) -> bytes:
        # size lines and data inline (every chunk passes them); the line ends and the
        # trailer in helpers that return the next position, or None to wait for more
        buf, out = self._buf + data, []
        pos = 0
        while pos < len(buf) and not self.done:
            if self._state == "size":
                m = _CHUNK_SIZE.match(buf, pos)
                if m is None or m.end() - 1 - pos > MAX_CHUNK_LINE:
                    self._check_size_line(buf, pos)
                    break
                self._chunk_left = int(m.group(1), 16)
                pos = m.end()
                self._state = "data" if self._chunk_left else "trailer"
            elif self._state == "data":
                take = buf[pos : pos + self._chunk_left]
                out.append(take)
                pos += len(take)
                self._chunk_left -= len(take)
                if not self._chunk_left:
                    self._state = "crlf"
            else:
                step = self._chunk_crlf(buf, pos) if self._state == "crlf" else self._chunk_trailer(buf, pos)
                if step is None:
                    break
                pos = step
        self._buf = buf[pos:] if not self.done else b""
        return b"".join(out)

    @staticmethod
    def _check_size_line(buf: bytes, pos: int) -> None:
        """An unmatched size line is fine only while it may still be arriving. One longer than
        MAX_CHUNK_LINE is refused even when it arrived whole, as it is when split into reads."""
        if b"\n" in buf[pos:] or len(buf) - pos > MAX_CHUNK_LINE:
            raise HttpParseError(f"bad chunk size line {buf[pos:pos + 20]!r}")

    def _chunk_crlf(self, buf: bytes, pos: int) -> int | None:
        if buf.startswith(b"\r\n", pos):
            pos += 2
        elif buf.startswith(b"\n", pos):
            pos += 1
        elif len(buf) - pos < 2 and buf[pos:] == b"\r":
            return None
        else:
            raise HttpParseError("missing CRLF after chunk data")
        self._state = "size"
        return pos

    def _chunk_trailer(self, buf: bytes, pos: int) -> int | None:
        """Trailer lines until an empty one."""
        nl = buf.find(b"\n", pos)
        if (len(buf) if nl < 0 else nl) - pos > MAX_CHUNK_LINE:  # whether it arrived whole or in reads
            raise HttpParseError("chunked trailer too long")
        if nl < 0:
            return None
        if buf[pos:nl].strip() == b"":
            self.done = True
        return nl + 1
