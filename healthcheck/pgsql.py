"""PostgreSQL probe. Without `login`: an SSLRequest, which every PostgreSQL server answers
with one byte (no log line, no login). With `login`: the startup into `database` (default:
the user's name), the password exchange the server asks for (trust, cleartext, md5 or
SCRAM-SHA-256), ReadyForQuery; with `request`, a query that must return a row (matching
`receive` if set). The wire format is `pgsql_wire` (sans-IO).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from healthcheck import pgsql_wire as pw
from healthcheck._io import Phase, ProbeError, Verdict, compile_bytes, run_probe
from healthcheck._session import Session, first_line, password
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    session = await Session.open(target, phase, source=check)
    try:
        if check.login is None:
            await session.write(pw.ssl_request())
            answer = (await session.more("waiting for the SSLRequest answer"))[:1]
            if answer in (b"S", b"N"):
                return True, f"pgsql answered the SSLRequest ({answer.decode()})"
            return False, f"bad greeting: {first_line(answer.decode('latin-1'))!r} is not a PostgreSQL answer"
        framer, pending = pw.Framer(), []

        async def next_message(what: str) -> pw.Message:
            message = await session.packet(what, framer.feed, pending)
            if message.kind == "E":
                raise pw.ServerError(pw.error_fields(message.body))
            return message

        try:
            await session.write(pw.startup(check.login, check.database))
            await _authenticate(session, next_message, check)
            while (await next_message("waiting for ReadyForQuery")).kind != "Z":
                pass
            if not check.request:
                await session.write(pw.terminate())
                return True, f"logged in as {check.login}"
            return await _query(session, next_message, check)
        except pw.ServerError as exc:
            return False, exc.reason
        except pw.PgsqlError as exc:
            raise ProbeError(str(exc)) from None
    finally:
        session.close()


NextMessage = Callable[[str], Awaitable[pw.Message]]


async def _authenticate(session: Session, next_message: NextMessage, check: CheckConfig) -> None:
    scram: pw.Scram | None = None
    for _ in range(4):  # at most: SASL, SASL continue, SASL final, OK
        message = await next_message("logging in")
        if message.kind != "R":
            raise pw.PgsqlError(f"bad reply to the startup: message {message.kind!r}")
        code = pw.auth_code(message.body)
        if code == 0:
            return
        if code == 3:
            await session.write(pw.password_message(password(check).encode()))
        elif code == 5:
            salt = message.body[4:8]
            await session.write(pw.password_message(pw.md5_password(check.login or "", password(check), salt)))
        elif code == 10:
            if pw.SCRAM.encode() not in message.body[4:].split(b"\0"):
                raise pw.PgsqlError("unsupported SASL mechanisms (only SCRAM-SHA-256)")
            scram = pw.Scram(password(check))
            await session.write(scram.initial())
        elif code == 11 and scram is not None:
            await session.write(scram.final(message.body[4:]))
        elif code == 12 and scram is not None:
            scram.verify(message.body[4:])
        else:
            raise pw.PgsqlError(f"unsupported authentication method {code}")
    raise pw.PgsqlError("bad authentication exchange: too many steps")


async def _query(session: Session, next_message: NextMessage, check: CheckConfig) -> Verdict:
    assert check.request is not None
    await session.write(pw.query(check.request))
    rows, count = [], 0
    while (message := await next_message("waiting for query result")).kind != "Z":
        if message.kind == "D":
            count += 1
            if len(rows) < 100:
                rows.append(pw.data_row(message.body))
    await session.write(pw.terminate())
    if not count:
        return False, "query returned no rows"
    if check.receive is None:
        return True, f"query returned {count} row{'s' if count > 1 else ''}"
    pattern = compile_bytes(check.receive)
    if any(pattern.search("\t".join(row).encode()) for row in rows):
        return True, f"query result matched {check.receive!r}"
    return False, f"query result did not match {check.receive!r}"
