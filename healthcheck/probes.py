"""Dispatch by `check.type` to the probe module. Every probe returns, never raises.

Two faces: `probe` is a coroutine for every type; `start` begins a check as a
callback state machine (no task) for the types that have one (tcp, plain http)
and returns None for the others, which the scheduler then runs as tasks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from healthcheck import exec as exec_probe
from healthcheck import http, none, sip, tcp
from healthcheck._io import describe_error
from healthcheck._poll import Conn, Done, Poller
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config import CheckConfig

ProbeFn = Callable[[Target, "CheckConfig"], Awaitable[ProbeResult]]

PROBES: dict[str, ProbeFn] = {
    "tcp": tcp.probe,
    "http": http.probe,
    "https": http.probe,
    "sip": sip.probe,
    "exec": exec_probe.probe,
    "none": none.probe,
}


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    """Run the check once. A bug in a probe becomes a failed sample, not a crash."""
    fn = PROBES.get(check.type)
    if fn is None:
        return ProbeResult(False, 0.0, f"unknown check type {check.type!r}")
    try:
        return await fn(target, check)
    except Exception as exc:  # the verdict must always come back
        return ProbeResult(False, 0.0, f"probe error: {describe_error(exc)}")


def start(poller: Poller, target: Target, check: CheckConfig, done: Done, arg: Any) -> Conn | None:
    """Begin a callback check (`done(arg, result)` follows), or None: use `probe`."""
    if check.type == "tcp":
        return tcp.start(poller, target, check, done, arg)
    if check.type == "http":
        return http.start(poller, target, check, done, arg)
    return None
