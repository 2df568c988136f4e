"""FTP probe: the greeting must be 220 (after any 120 "ready soon"); with `login`, USER and
PASS must end in 230; with `request`, that file is fetched (passive mode) and must arrive
whole (matching `receive` if set); then QUIT. Multi-line replies (RFC 959 4.2) are read to
their last line; each line is bounded, and so is the number of lines and the file's bytes.

The data connection goes to the real server's own address, whatever address a 227 reply
names: a check never connects elsewhere (the FTP bounce problem, RFC 2577).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from healthcheck._io import Phase, ProbeError, Verdict, compile_bytes, open_stream, run_probe
from healthcheck._session import Session, first_line, password
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

MAX_LINES = 64


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


def reply_code(line: str) -> int | None:
    return int(line[:3]) if len(line) >= 3 and line[:3].isdigit() and line[3:4] in ("", " ", "-") else None


async def reply(session: Session, what: str) -> tuple[int, str]:
    """One reply: (code, its last line)."""
    first = await session.line(what)
    code = reply_code(first)
    if code is None:
        raise ProbeError(f"bad reply: {first_line(first)!r} is not an FTP reply")
    line = first
    for _ in range(MAX_LINES):
        if line[:4] == f"{code} " or line == str(code):
            return code, first
        line = await session.line(what)
    raise ProbeError(f"bad reply: over {MAX_LINES} lines")


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    session = await Session.open(target, phase, source=check)
    try:
        code, text = await reply(session, "waiting for greeting")
        if code == 120:
            code, text = await reply(session, "waiting for greeting")
        if code != 220:
            return False, f"bad greeting: {first_line(text)!r}"
        if check.login is not None:
            await session.write(f"USER {check.login}\r\n".encode())
            code, text = await reply(session, "sending USER")
            if code == 331:
                await session.write(f"PASS {password(check)}\r\n".encode())
                code, text = await reply(session, "logging in")
            if code != 230:
                return False, f"login refused: {first_line(text)!r}"
            if check.request:
                return await _fetch(session, target, check)
        await session.write(b"QUIT\r\n")
        return True, f"logged in as {check.login}" if check.login else "FTP greeting"
    finally:
        session.close()


MAX_FILE = 65536


def passive_port(code: int, text: str) -> int | None:
    """The port of a 227 (h1,h2,h3,h4,p1,p2) or 229 (|||port|) reply."""
    if code == 229:
        match = re.search(r"\(([!-~])\1\1(\d{1,5})\1\)", text)
        port = int(match.group(2)) if match else 0
    elif code == 227:
        match = re.search(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})", text)
        port = int(match.group(5)) * 256 + int(match.group(6)) if match else 0
    else:
        return None
    return port if 0 < port < 65536 else None


async def _fetch(session: Session, target: Target, check: CheckConfig) -> Verdict:
    assert check.request is not None
    await session.write(b"TYPE I\r\n")
    await reply(session, "setting binary mode")
    await session.write(b"EPSV\r\n" if ":" in target.address else b"PASV\r\n")
    code, text = await reply(session, "entering passive mode")
    port = passive_port(code, text)
    if port is None:
        return False, f"passive mode refused: {first_line(text)!r}"
    data = await open_stream(Target(target.address, port), session.phase, 16384, source=check)
    try:
        await session.write(f"RETR {check.request}\r\n".encode())
        code, text = await reply(session, "asking for the file")
        if code not in (125, 150):
            return False, f"cannot fetch {check.request!r}: {first_line(text)!r}"
        session.phase.name = "reading the file"
        body = bytearray()
        while len(body) <= MAX_FILE and (chunk := await data.read()):
            body += chunk
    finally:
        data.close()
    code, text = await reply(session, "waiting for the end of the transfer")
    await session.write(b"QUIT\r\n")
    if code != 226 and len(body) <= MAX_FILE:
        return False, f"transfer of {check.request!r} failed: {first_line(text)!r}"
    if check.receive is None:
        return True, f"fetched {check.request!r} ({len(body)} bytes)"
    if compile_bytes(check.receive).search(bytes(body[:MAX_FILE])):
        return True, f"{check.request!r} matched {check.receive!r}"
    return False, f"{check.request!r} did not match {check.receive!r}"
