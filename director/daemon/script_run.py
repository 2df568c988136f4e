"""One run of a tracked script (`[[vrrp_script]]`): the I/O edge of `director.daemon.trackers`.

The script runs like an exec check (`healthcheck.exec`): an argv and no shell, the hook
environment (`director.hook_env`), its own session, stdin from /dev/null, optionally as
another user. Its exit is watched with a pidfd, so a stray child that keeps stdout open
cannot hold the result back; at the timeout the script is killed with everything it
started (`director.hook_tree`) and the run counts as a failure. Output is drained as it
comes and only the first `MAX_OUTPUT` bytes are kept, so a script that floods its output
costs no memory.
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
import subprocess
from dataclasses import dataclass

from director.hook_env import hook_environment
from director.hook_tree import run_to_end

MAX_OUTPUT = 4096  # bytes kept for the reason; the rest is read and dropped


@dataclass(frozen=True)
class Account:
    """Who a script runs as: resolved once per config, since a user lookup may block."""

    uid: int
    gid: int
    groups: tuple[int, ...]


def account(user: str | None, group: str | None) -> Account | None:
    """The uid, gid and supplementary groups of `user` (with `group` as its gid); None for
    the daemon's own. LookupError names what this host does not know."""
    if user is None:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise LookupError(f"no user named {user!r} on this host") from None
    gid = entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise LookupError(f"no group named {group!r} on this host") from None
    return Account(entry.pw_uid, gid, tuple(os.getgrouplist(user, gid)))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str  # "exit 0", "exit 1: <first line>", "timeout after 2s", "cannot run ...: ..."
    code: int | None  # exit status; negative: the signal that killed it; None: never ran or timed out


def outcome(code: int, output: bytes) -> Outcome:
    first = output.decode("utf-8", "replace").strip().splitlines()
    detail = f": {first[0].strip()[:200]}" if first else ""
    if code == 0:
        return Outcome(True, "exit 0", 0)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return Outcome(False, f"killed by {name}{detail}", code)
    return Outcome(False, f"exit {code}{detail}", code)


def _spawn(command: tuple[str, ...], who: Account | None, env: dict[str, str]) -> subprocess.Popen:
    ids = {} if who is None else {"user": who.uid, "group": who.gid, "extra_groups": list(who.groups)}
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env=hook_environment(**env), cwd="/", **ids)


async def run_script(command: tuple[str, ...], timeout: float, who: Account | None = None,
                     env: dict[str, str] | None = None) -> Outcome:
    """Run the script once, `env` (DIRECTORD_* variables) added to the hook environment; a failure
    to start it, or a run past `timeout`, is a failed Outcome."""
    try:
        proc = _spawn(command, who, env or {})
    except (OSError, subprocess.SubprocessError) as exc:
        detail = (getattr(exc, "strerror", None) or str(exc)).lower()
        return Outcome(False, f"cannot run {command[0]!r}: {detail}", None)
    try:
        code, output = await run_to_end(proc, MAX_OUTPUT, timeout)
    except TimeoutError:
        return Outcome(False, f"timeout after {timeout:g}s (killed with everything it started)", None)
    return outcome(code, output)


