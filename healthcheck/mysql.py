"""MySQL/MariaDB probe: the server's handshake; with `login`, a mysql_native_password login
(into `database` if set); with `request`, a query that must return a row (matching `receive`
if set). The wire format is `mysql_wire` (sans-IO).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from healthcheck import mysql_wire as mw
from healthcheck._io import Phase, ProbeError, Verdict, compile_bytes, run_probe
from healthcheck._session import Session, password
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    session = await Session.open(target, phase, source=check)
    framer, pending = mw.Framer(), []
    try:
        try:
            hello = mw.parse_handshake(await session.packet("waiting for greeting", framer.feed, pending))
            if check.login is None:  # closing here is a handshake error to the server: see the docs
                return True, f"mysql greeting from {hello.version}"
            secret = password(check)
            await session.write(mw.packet(1, mw.login(check.login, secret, check.database, hello)))
            while True:
                reply = await session.packet("logging in", framer.feed, pending)
                answer = mw.auth_reply(reply, secret)
                if answer is None:
                    break
                await session.write(mw.packet(framer.seq + 1, answer))
            if not check.request:
                await session.write(mw.packet(0, b"\x01"))
                return True, f"logged in to {hello.version} as {check.login}"
            return await _query(session, framer, pending, check)
        except mw.ServerError as exc:
            return False, exc.reason
        except mw.MysqlError as exc:
            raise ProbeError(str(exc)) from None
    finally:
        session.close()


async def _query(session: Session, framer: mw.Framer, pending: list[bytes], check: CheckConfig) -> Verdict:
    assert check.request is not None
    await session.write(mw.packet(0, mw.query(check.request)))
    result = mw.QueryResult()
    while not result.done:
        result.feed(await session.packet("waiting for query result", framer.feed, pending))
    await session.write(mw.packet(0, b"\x01"))
    if not result.row_count:
        return False, "query returned no rows"
    if check.receive is None:
        return True, f"query returned {result.row_count} row{'s' if result.row_count > 1 else ''}"
    pattern = compile_bytes(check.receive)
    for row in result.rows:
        if pattern.search("\t".join(row).encode()):
            return True, f"query result matched {check.receive!r}"
    return False, f"query result did not match {check.receive!r}"
