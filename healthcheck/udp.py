"""UDP probe: send `send` (one datagram, empty when unset) and judge the reply.

Up when a reply comes back (matching `expect`, if set) within the timeout. An ICMP port
unreachable is "connection refused"; no reply is a timeout. With `require_reply = false`
silence passes and only an ICMP error fails, as keepalived's UDP_CHECK without
require_reply. Runs on the shared epoll (`_dgram`): no task per check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from healthcheck import _poll
from healthcheck._dgram import DgramConn, DgramPlan
from healthcheck._io import compile_bytes
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

MAX_SHOWN = 40  # bytes of a reply that did not match, shown in the reason


def plan(target: Target, check: CheckConfig) -> DgramPlan:
    payload = check.send or b""
    silent = None if check.require_reply else f"no ICMP error within {float(check.timeout)}s"
    return DgramPlan(target, check, lambda conn: payload, _judge(check), silent_ok=silent)


def _judge(check: CheckConfig):
    expect = check.expect
    if expect is None:
        def any_reply(conn: DgramConn, data: bytes) -> tuple[bool, str]:
            return True, f"reply of {len(data)} bytes"
        return any_reply
    pattern = compile_bytes(expect)

    def matching(conn: DgramConn, data: bytes) -> tuple[bool, str]:
        if pattern.search(data):
            return True, f"reply matched {expect!r}"
        return False, f"reply did not match {expect!r}: {data[:MAX_SHOWN]!r}"
    return matching


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await _poll.run(plan(target, check))
