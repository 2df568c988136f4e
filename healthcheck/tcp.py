"""TCP probe: connect, and optionally send bytes and expect a regex in the reply."""

from __future__ import annotations

from typing import TYPE_CHECKING

from healthcheck._io import Phase, Stream, Verdict, compile_bytes, connect, open_stream, run_probe
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config import CheckConfig


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    if check.send is None and check.expect is None:
        sock = await connect(target, phase)
        sock.close()
        return True, "connected"
    stream = await open_stream(target, phase, check.max_body)
    try:
        if check.send:
            phase.name = "sending"
            await stream.write(check.send)
        if check.expect is None:
            return True, f"connected, sent {len(check.send or b'')} bytes"
        phase.name = "waiting for reply"
        return await _expect(stream, check.expect, check.max_body)
    finally:
        stream.close()


async def _expect(stream: Stream, expect: str, limit: int) -> Verdict:
    pattern = compile_bytes(expect)
    reply = bytearray()
    while True:
        data = await stream.read()
        if not data:
            how = "connection closed" if reply else "connection closed without a reply"
            return False, f"reply did not match {expect!r} ({how})"
        reply += data[: limit - len(reply)]
        if pattern.search(reply):
            return True, f"reply matched {expect!r}"
        if len(reply) >= limit:
            return False, f"reply did not match {expect!r} in first {limit} bytes"
