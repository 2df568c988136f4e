"""Sans-IO SMTP replies for the smtp check (RFC 5321 4.2): read one reply, bounded.

A reply is one or more lines "CODE-text" ending with a line "CODE text" (or a bare "CODE").
`ReplyReader.feed` takes bytes as they arrive and gives the reply once its last line is in;
anything malformed, or longer than `MAX_REPLY` bytes or `MAX_LINES` lines, is a
`SmtpParseError` whose message is the reason a person reads.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_REPLY = 8192  # bytes in one reply (RFC 5321 allows 512 per line; EHLO lists run longer)
MAX_LINES = 100

_LINE = re.compile(rb"([2-5][0-9][0-9])([ -]|$)(.*)", re.S)


class SmtpParseError(ValueError):
    """Not an SMTP reply; the text says why."""


class Reply(NamedTuple):
    code: int
    lines: tuple[str, ...]  # the text of each line, without the code

    @property
    def summary(self) -> str:
        text = self.lines[0] if self.lines else ""
        return f"{self.code} {text}".strip()[:120]


class ReplyReader:
    """Feed bytes; a `Reply` once the last line is in (the rest stays for the next reply)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.lines: list[str] = []
        self.code: int | None = None
        self.size = 0

    def feed(self, data: bytes) -> Reply | None:
        self.buf += data
        while True:
            end = self.buf.find(b"\n")
            if end < 0:
                if self.size + len(self.buf) > MAX_REPLY:
                    raise SmtpParseError(f"reply longer than {MAX_REPLY} bytes")
                return None
            line = bytes(self.buf[:end]).rstrip(b"\r")
            del self.buf[:end + 1]
            self.size += end + 1
            reply = self._line(line)
            if reply is not None:
                return reply

    def _line(self, line: bytes) -> Reply | None:
        match = _LINE.fullmatch(line)
        if match is None:
            raise SmtpParseError(f"not an SMTP reply line: {line[:60]!r}")
        code = int(match[1])
        if self.code is not None and code != self.code:
            raise SmtpParseError(f"reply lines with different codes ({self.code}, {code})")
        self.code = code
        self.lines.append(match[3].decode("utf-8", "replace"))
        if len(self.lines) > MAX_LINES or self.size > MAX_REPLY:
            raise SmtpParseError(f"reply longer than {MAX_LINES} lines or {MAX_REPLY} bytes")
        if match[2] == b"-":
            return None
        reply = Reply(code, tuple(self.lines))
        self.lines, self.code, self.size = [], None, 0
        return reply
