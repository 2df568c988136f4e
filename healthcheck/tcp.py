"""TCP probe: connect, and optionally send bytes and expect a regex in the reply.

Runs as a callback state machine on the shared epoll (`_poll`): no task per check.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from healthcheck._io import compile_bytes
from healthcheck._poll import Plan, Verdict, run
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig


def plan(target: Target, check: CheckConfig) -> Plan:
    """connect; then `send`, then read until `expect` matches (within `max_body` bytes)."""
    send = check.send or b""
    if check.expect is not None:
        judge = functools.partial(ExpectJudge, check.expect, check.max_body)
        return Plan(target, check, request=send, judge=judge, read_phase="waiting for reply")
    return Plan(target, check, request=send,
                ok_reason=f"connected, sent {len(send)} bytes" if send else "connected")


class ExpectJudge:
    """Sans-IO: searches the reply for a regex, reading at most `limit` bytes."""

    __slots__ = ("expect", "limit", "pattern", "phase", "reply")

    def __init__(self, expect: str, limit: int) -> None:
        self.expect = expect
        self.limit = max(1, limit)
        self.pattern = compile_bytes(expect)
        self.phase = "waiting for reply"
        self.reply = bytearray()

    def feed(self, data: bytes) -> Verdict | None:
        reply, expect = self.reply, self.expect
        if not data:
            how = "connection closed" if reply else "connection closed without a reply"
            return False, f"reply did not match {expect!r} ({how})"
        reply += data[: self.limit - len(reply)]
        if self.pattern.search(reply):
            return True, f"reply matched {expect!r}"
        if len(reply) >= self.limit:
            return False, f"reply did not match {expect!r} in first {self.limit} bytes"
        return None


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run(plan(target, check))
