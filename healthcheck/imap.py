"""IMAP probe (imap, and imaps over TLS): the greeting must be `* OK` (`* PREAUTH` too);
with `login`, LOGIN must be answered OK; then LOGOUT. The certificate is not verified (as
ldirectord's imaps check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from healthcheck._io import Phase, ProbeError, Verdict, run_probe
from healthcheck._session import Session, first_line, password
from healthcheck.http import ssl_context
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

MAX_LINES = 64  # untagged lines before the tagged answer


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


def quoted(text: str) -> str:
    """An IMAP quoted string (RFC 3501 4.3); the loader refused CR, LF and NUL."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def greeting_verdict(line: str) -> Verdict | None:
    """None when the greeting lets us go on; else the verdict."""
    upper = line.upper()
    if upper.startswith(("* OK", "* PREAUTH")):
        return None
    if upper.startswith("* BYE"):
        return False, f"server refused the connection: {first_line(line)!r}"
    return False, f"bad greeting: {first_line(line)!r} is not an IMAP greeting"


async def tagged(session: Session, tag: str, what: str) -> str:
    for _ in range(MAX_LINES):
        line = await session.line(what)
        if line.startswith(tag + " "):
            return line[len(tag) + 1:]
    raise ProbeError(f"no answer to {tag} in {MAX_LINES} lines")


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    tls = ssl_context(False) if check.type == "imaps" else None
    session = await Session.open(target, phase, tls, source=check)
    try:
        greeting = await session.line("waiting for greeting")
        bad = greeting_verdict(greeting)
        if bad is not None:
            return bad
        if check.login is not None and not greeting.upper().startswith("* PREAUTH"):
            await session.write(f"a1 LOGIN {quoted(check.login)} {quoted(password(check))}\r\n".encode())
            answer = await tagged(session, "a1", "logging in")
            if not answer.upper().startswith("OK"):
                return False, f"login refused: {first_line(answer)!r}"
        await session.write(b"a2 LOGOUT\r\n")
        return True, f"logged in as {check.login}" if check.login else "IMAP greeting"
    finally:
        session.close()
