"""Exec probe: run an argv (never a shell) and judge its exit code.

0 is up, 1 is down. With `dynamic_weight`, 2..255 is up with weight `code - 2`
(without it, any other code is down). The command runs in its own session so
that on timeout the whole process group is killed, not just the leader (with
any descendant that left it, see director.hook_tree), and stray children left
behind after it exits are killed too. It sees the target in
DIRECTORD_ADDRESS, DIRECTORD_PORT and DIRECTORD_FAMILY. Output is read bounded;
its first line explains a failure.

Exit is watched with a pidfd rather than asyncio's subprocess layer: that layer
waits for every pipe to close before reporting the exit, so a stray child holding
stdout would hold the verdict too; it also costs a watcher thread per child.
"""

from __future__ import annotations

import signal
import subprocess
from typing import TYPE_CHECKING

from director.hook_env import hook_environment
from director.hook_tree import run_to_end
from healthcheck._io import Phase, ProbeError, Verdict, run_probe
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

MAX_OUTPUT = 512  # kept for the reason; the rest is drained and dropped


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


def environment(target: Target) -> dict[str, str]:
    return hook_environment(DIRECTORD_ADDRESS=target.address, DIRECTORD_PORT=str(target.port),
                            DIRECTORD_FAMILY=str(target.family))


def judge(code: int, output: bytes, dynamic_weight: bool) -> Verdict:
    """Exit status (negative: killed by that signal) to a verdict."""
    first = output.decode("utf-8", "replace").strip().splitlines()
    detail = f": {first[0].strip()}" if first else ""
    if code == 0:
        return True, "exit 0"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return False, f"killed by {name}{detail}"
    if dynamic_weight and 2 <= code <= 255:
        return True, f"exit {code}: weight {code - 2}", code - 2
    return False, f"exit {code}{detail}"



def _spawn(target: Target, check: CheckConfig) -> subprocess.Popen:
    try:
        return subprocess.Popen(
            check.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment(target),
        )
    except OSError as exc:
        detail = (exc.strerror or str(exc)).lower()
        raise ProbeError(f"cannot run {check.command[0]!r}: {detail}") from None


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    if not check.command:
        raise ProbeError("exec check has no command")
    phase.name = "starting command"
    proc = _spawn(target, check)
    phase.name = "waiting for command (process group killed)"
    code, output = await run_to_end(proc, MAX_OUTPUT)  # the probe's deadline cancels it
    return judge(code, output, check.dynamic_weight)
