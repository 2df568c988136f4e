"""FTP probe: the greeting must be 220 (after any 120 "ready soon"); with `login`, USER and
PASS must end in 230; then QUIT. Multi-line replies (RFC 959 4.2) are read to their last
line; each line is bounded, and so is the number of lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from healthcheck._io import Phase, ProbeError, Verdict, run_probe
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
    session = await Session.open(target, phase)
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
        await session.write(b"QUIT\r\n")
        return True, f"logged in as {check.login}" if check.login else "FTP greeting"
    finally:
        session.close()
