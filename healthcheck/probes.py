"""Dispatch by `check.type` to the probe module. Every probe returns, never raises.

Two faces: `probe` is a coroutine for every type; `plan` gives, for the types
that have one (tcp, plain http, dns, udp, ping), a plan (`_poll.Plan` or one with
the same `start`/`close`) whose `start` runs a check as a callback state machine
(no task); the scheduler runs the other types as tasks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from healthcheck import (  # issue 19
    dns,
    ftp,
    http,
    imap,
    ldap,
    mysql,
    none,
    pgsql,
    ping,
    pop,
    radius,
    sip,
    smtp,
    tcp,
    udp,
)
from healthcheck import exec as exec_probe
from healthcheck._io import describe_error
from healthcheck._poll import Plan
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

ProbeFn = Callable[[Target, "CheckConfig"], Awaitable[ProbeResult]]

PROBES: dict[str, ProbeFn] = {
    "tcp": tcp.probe,
    "http": http.probe,
    "https": http.probe,
    "sip": sip.probe,
    "exec": exec_probe.probe,
    "none": none.probe,
    "mysql": mysql.probe,
    "pgsql": pgsql.probe,
    "ldap": ldap.probe,
    "imap": imap.probe,
    "imaps": imap.probe,
    "pop": pop.probe,
    "pops": pop.probe,
    "ftp": ftp.probe,
    "radius": radius.probe,
}
PROBES |= {"dns": dns.probe, "udp": udp.probe, "ping": ping.probe, "smtp": smtp.probe}  # issue 19

# Types whose checks run as callback state machines (no task per check), by their plan.
PLANS: dict[str, Callable[[Target, CheckConfig], object]] = {"tcp": tcp.plan, "http": http.plan}
PLANS |= {"dns": dns.plan, "udp": udp.plan, "ping": ping.plan}  # issue 19


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    """Run the check once. A bug in a probe becomes a failed sample, not a crash."""
    fn = PROBES.get(check.type)
    if fn is None:
        return ProbeResult(False, 0.0, f"unknown check type {check.type!r}")
    try:
        return await fn(target, check)
    except Exception as exc:  # the verdict must always come back
        return ProbeResult(False, 0.0, f"probe error: {describe_error(exc)}")


def plan(target: Target, check: CheckConfig) -> Plan | None:
    """The callback plan for this check, or None: run it with `probe` (a coroutine)."""
    make = PLANS.get(check.type)
    if make is None:
        return None
    try:
        return make(target, check)
    except Exception as exc:  # a check the loader let through but the probe cannot build
        return Plan(target, check, error=f"probe error: {describe_error(exc)}")
