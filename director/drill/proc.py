"""Commands, waits and processes: the primitives the drill and the lab toolkit share.

They live in the installed package because `directord drill` runs without the
repository's scripts/; `scripts.labkit` re-exports them, so tests, benchmarks, the
lab and the drill all use these one copies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def in_netns(argv: Sequence[str], ns: str | None) -> list[str]:
    """argv as run inside namespace ns (unchanged when ns is None). iproute2's own tools
    switch namespace themselves (`ip -n`): one process less for the lab's most frequent calls."""
    if not ns:
        return list(argv)
    if argv and argv[0] in ("ip", "bridge"):
        return [argv[0], "-n", ns, *argv[1:]]
    return ["ip", "netns", "exec", ns, *argv]


def sh(argv: Sequence[str], ns: str | None = None, check: bool = True, timeout: float = 60.0) -> str:
    """Run argv (in namespace ns) and return its stdout; with `check`, a failure raises
    RuntimeError carrying the command and its stderr, so a test or the drill says why."""
    full = in_netns(argv, ns)
    proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1,
             what: str = "condition") -> float:
    """Poll until predicate() is true and return the seconds it took; TimeoutError naming
    `what` after `timeout` seconds. Polling, because the conditions are other processes'."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def alive(pid: int | None) -> bool:
    """Whether pid runs (a zombie does not): reaps it if it is our exited child."""
    if pid is None:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """`sig` to every process of group pgid; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Live processes in process group pgid (a daemon's children that outlived it)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(stat.parent.name))
    return out
