"""LDAP probe: a simple bind (anonymous without `login`; `login` is the bind DN, with
`passwd`) that must succeed; with `request`, a base-scope read of that DN that must find
the entry (matching `receive` if set). BER is `ldap_ber` (sans-IO).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from healthcheck import ldap_ber as lb
from healthcheck._io import Phase, ProbeError, Verdict, compile_bytes, run_probe
from healthcheck._session import Session, password
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    session = await Session.open(target, phase, source=check)
    framer, pending = lb.Framer(), []

    async def reply(message_id: int, what: str) -> lb.Message:
        while True:
            message = await session.packet(what, framer.feed, pending)
            if message.op == lb.EXTENDED_RESPONSE and message.id == 0:  # notice of disconnection
                raise ProbeError(f"server closed the session: {lb.parse_result(message.body).reason}")
            if message.id == message_id:
                return message

    try:
        try:
            await session.write(lb.bind(1, check.login or "", password(check) if check.login else ""))
            message = await reply(1, "waiting for the bind response")
            if message.op != lb.BIND_RESPONSE:
                raise ProbeError(f"bad reply to the bind: operation {message.op:#04x}")
            result = lb.parse_result(message.body)
            how = f"bound as {check.login}" if check.login else "anonymous bind"
            if result.code != 0:
                return False, f"{how} failed: {result.reason}"
            if not check.request:
                await session.write(lb.unbind(2))
                return True, how
            return await _search(session, reply, check, how)
        except lb.LdapError as exc:
            raise ProbeError(str(exc)) from None
    finally:
        session.close()


async def _search(session: Session, reply: Callable[[int, str], Awaitable[lb.Message]], check: CheckConfig,
                  how: str) -> Verdict:
    assert check.request is not None
    await session.write(lb.search_base(2, check.request))
    entries: list[str] = []
    while True:
        message = await reply(2, "waiting for the search result")
        if message.op == lb.SEARCH_ENTRY:
            entries.append(lb.entry_text(message.body))
        elif message.op == lb.SEARCH_DONE:
            break
    await session.write(lb.unbind(3))
    result = lb.parse_result(message.body)
    if result.code != 0:
        return False, f"{how}, reading {check.request!r} failed: {result.reason}"
    if not entries:
        return False, f"{how}, no entry {check.request!r}"
    if check.receive is None:
        return True, f"{how}, read {check.request!r}"
    if any(compile_bytes(check.receive).search(text.encode()) for text in entries):
        return True, f"{how}, entry matched {check.receive!r}"
    return False, f"{how}, entry {check.request!r} did not match {check.receive!r}"
