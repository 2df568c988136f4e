"""POP3 probe (pop, and pops over TLS): the greeting must be `+OK`; with `login`, USER and
PASS must be answered `+OK`; then QUIT. The certificate is not verified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from healthcheck._io import Phase, Verdict, run_probe
from healthcheck._session import Session, first_line, password
from healthcheck.http import ssl_context
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    tls = ssl_context(False) if check.type == "pops" else None
    session = await Session.open(target, phase, tls, source=check)
    try:
        greeting = await session.line("waiting for greeting")
        if not greeting.startswith("+OK"):
            return False, f"bad greeting: {first_line(greeting)!r} is not a POP3 greeting"
        if check.login is not None:
            for command, what in ((f"USER {check.login}", "sending USER"), (f"PASS {password(check)}", "logging in")):
                await session.write(command.encode() + b"\r\n")
                answer = await session.line(what)
                if not answer.startswith("+OK"):
                    return False, f"login refused: {first_line(answer)!r}"
        await session.write(b"QUIT\r\n")
        return True, f"logged in as {check.login}" if check.login else "POP3 greeting"
    finally:
        session.close()
