"""Notify hooks: which commands a state change runs (sans-IO), and running them with no
shell, in bounded time.

An instance's (or a sync group's) state-specific hook runs first, as it is, then `notify`
with the arguments of the chosen style: directord's, or keepalived's, so that scripts
written for keepalived run unchanged. `Hooks` keeps each one's commands in transition
order, so an external system never sees master after backup.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import structlog

from director.hook_env import hook_environment
from director.hook_tree import run_to_end

if TYPE_CHECKING:
    from director.config.model import VrrpInstanceConfig, VrrpSyncGroupConfig

log = structlog.get_logger("vrrp.notify")
NOTIFY_TIMEOUT = 10.0
MAX_OUTPUT = 4096  # bytes of a hook's output kept for the log line; the rest is read and dropped
# keepalived's words for the states; an instance leaving for init is stopping
KEEPALIVED_STATES = {"master": "MASTER", "backup": "BACKUP", "fault": "FAULT", "init": "STOP"}
Command = list[str]


def instance_commands(cfg: VrrpInstanceConfig, state: str, priority: int) -> list[Command]:
    """What an instance's change to `state` (a vrrp.fsm.State value) runs, in order."""
    specific = {"master": cfg.notify_master, "backup": cfg.notify_backup,
                "fault": cfg.notify_fault, "init": cfg.notify_stop}.get(state, ())
    commands = [list(specific)] if specific else []
    if cfg.notify:
        extra = (["INSTANCE", cfg.name, KEEPALIVED_STATES[state], str(priority)]
                 if cfg.notify_arguments == "keepalived" else [cfg.name, state, str(priority)])
        commands.append([*cfg.notify, *extra])
    return commands


def group_commands(group: VrrpSyncGroupConfig, state: str) -> list[Command]:
    """What a sync group's change to `state` runs; a group has no priority (keepalived says 0)."""
    specific = {"master": group.notify_master, "backup": group.notify_backup,
                "fault": group.notify_fault}.get(state, ())
    commands = [list(specific)] if specific else []
    if group.notify:
        extra = (["GROUP", group.name, KEEPALIVED_STATES[state], "0"]
                 if group.notify_arguments == "keepalived" else [group.name, state])
        commands.append([*group.notify, *extra])
    return commands


def group_state(states: Iterable[str]) -> str | None:
    """A sync group's state from its members': fault as soon as one is, master or backup
    when all are; None while they are on their way (or stopping: a group does not stop)."""
    seen = set(states)
    if "fault" in seen:
        return "fault"
    return next(iter(seen)) if len(seen) == 1 and seen <= {"master", "backup"} else None


def fifo_line(kind: str, name: str, state: str, priority: int) -> bytes:
    """One line for the notify FIFO, in keepalived's format: `INSTANCE "VI_1" MASTER 100`."""
    return f'{kind} "{name}" {KEEPALIVED_STATES[state]} {priority}\n'.encode()


async def run_notify(args: Sequence[str], timeout: float = NOTIFY_TIMEOUT) -> int | None:
    """Run one hook command and return its exit code (negative: the signal that ended it);
    None if it could not run or timed out. It ends as exec checks and tracked scripts do
    (director.hook_tree.run_to_end): output drained and bounded, killed with what it started;
    it starts with no shell, in its own session, with the minimal environment (`spawn`)."""
    if not args:
        return None
    args = list(args)
    try:
        proc = spawn(args, hook_environment())
    except OSError as exc:
        log.warning("notify failed to start", argv=args, error=str(exc))
        return None
    try:
        code, output = await run_to_end(proc, MAX_OUTPUT, timeout)
    except TimeoutError:
        log.warning("notify killed after timeout", argv=args, timeout=timeout)
        return None
    if code == 0:
        log.info("notify ran", argv=args, exit=code)
    else:
        first = output.decode("utf-8", "replace").strip().splitlines()
        log.warning("notify ran", argv=args, exit=code, output=first[0].strip()[:200] if first else "")
    return code


@dataclass
class Spawned:
    """A hook started by `spawn`: the part of a subprocess.Popen that run_to_end uses."""

    pid: int
    stdout: BinaryIO
    returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def spawn(args: list[str], env: dict[str, str]) -> Spawned:
    """Start a hook in its own session, stdin /dev/null, stdout and stderr one pipe, and no
    signal blocked: the VRRP process's threads block SIGTERM and SIGINT (its stop thread
    takes them), and a mask is inherited through exec, where subprocess would keep it."""
    program = args[0] if "/" in args[0] else shutil.which(args[0], path=env.get("PATH", ""))
    if program is None:
        raise FileNotFoundError(errno.ENOENT, "not found on the hook PATH", args[0])
    read, write = os.pipe2(os.O_CLOEXEC)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(program, args, env, setsid=True, setsigmask=(),
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # Python ignores them; hooks must not
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, write, 1),
                                           (os.POSIX_SPAWN_DUP2, write, 2)])
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
        os.close(devnull)
    return Spawned(pid, os.fdopen(read, "rb", buffering=0))


class Hooks:
    """The running notify hooks of every instance, so a stopping runtime can let the
    last ones (state "init") finish."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def start(self, loop: asyncio.AbstractEventLoop, after: asyncio.Task | None,
              commands: Sequence[Command]) -> asyncio.Task:
        """Run the commands, one after the other, once the previous ones (`after`) are done;
        each is bounded in time, so a hung hook delays the next by that much at most."""
        task = loop.create_task(_after(after, commands))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the running hooks; never raises."""
        if self._tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait(set(self._tasks), timeout=timeout)


async def _after(prev: asyncio.Task | None, commands: Sequence[Command]) -> None:
    if prev is not None:
        with contextlib.suppress(Exception):
            await prev
    for command in commands:
        await run_notify(command)
