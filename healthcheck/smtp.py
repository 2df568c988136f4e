"""SMTP probe: up when the server greets with 220 and accepts EHLO (or HELO) with 250.

The exchange is keepalived's SMTP_CHECK: read the banner, send `EHLO helo_name` (HELO when
the server refuses EHLO with a 5xx, as an RFC 821 server does), then QUIT. A 554 banner
(the server refusing service) is down with its text as the reason. The replies are read by
`smtp_reply` (sans-IO, bounded), all under the one deadline.
"""

from __future__ import annotations

import functools
import socket
from typing import TYPE_CHECKING

from healthcheck import smtp_reply as sr
from healthcheck._io import Phase, ProbeError, Stream, Verdict, open_stream, run_probe
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig


@functools.cache
def default_helo_name() -> str:
    return socket.gethostname() or "localhost"


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    stream = await open_stream(target, phase, sr.MAX_REPLY, source=check)
    try:
        reader = sr.ReplyReader()
        phase.name = "waiting for the SMTP banner"
        banner = await _reply(stream, reader)
        if banner.code != 220:
            return False, f"banner {banner.summary}"
        name = check.helo_name or default_helo_name()
        phase.name = "waiting for the EHLO reply"
        await stream.write(f"EHLO {name}\r\n".encode("ascii"))
        hello = await _reply(stream, reader)
        verb = "EHLO"
        if 500 <= hello.code < 600:
            phase.name = "waiting for the HELO reply"
            await stream.write(f"HELO {name}\r\n".encode("ascii"))
            hello = await _reply(stream, reader)
            verb = "HELO"
        if hello.code != 250:
            return False, f"{verb} answered {hello.summary}"
        phase.name = "sending QUIT"
        await stream.write(b"QUIT\r\n")
        return True, f"banner 220, {verb} 250"
    finally:
        stream.close()


async def _reply(stream: Stream, reader: sr.ReplyReader) -> sr.Reply:
    reply = reader.feed(b"")
    while reply is None:
        data = await stream.read()
        if not data:
            raise ProbeError(f"connection closed before a whole SMTP reply ({_what(reader)})")
        try:
            reply = reader.feed(data)
        except sr.SmtpParseError as exc:
            raise ProbeError(f"bad SMTP reply: {exc}") from None
    return reply


def _what(reader: sr.ReplyReader) -> str:
    return "nothing read" if not reader.buf and not reader.lines else "reply cut off"
