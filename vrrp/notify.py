"""Run the notify hook: `argv + [instance, state, priority]`, no shell, bounded time.

`Hooks` keeps an instance's hooks in transition order, so an external system never
sees master after backup.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog

from director.hook_env import hook_environment
from director.hook_tree import kill_tree

log = structlog.get_logger("vrrp.notify")
NOTIFY_TIMEOUT = 10.0


async def run_notify(
    argv: Sequence[str], instance: str, state: str, priority: int,
    timeout: float = NOTIFY_TIMEOUT,
) -> int | None:
    """Run the hook and return its exit code; None if it could not run or timed out."""
    if not argv:
        return None
    args = [*argv, instance, state, str(priority)]
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=hook_environment(),
            start_new_session=True,  # its own process group: a timeout kills what it started too
        )
    except OSError as exc:
        log.warning("notify failed to start", argv=args, error=str(exc))
        return None
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        log.warning("notify killed after timeout", argv=args, timeout=timeout)
        return None
    finally:
        if proc.returncode is None:
            kill_tree(proc.pid)  # its group, and whatever left the group with setsid
            await asyncio.shield(proc.wait())
    (log.info if code == 0 else log.warning)("notify ran", argv=args, exit=code)
    return code


class Hooks:
    """The running notify hooks of every instance, so a stopping runtime can let the
    last ones (state "init") finish."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def start(self, loop: asyncio.AbstractEventLoop, after: asyncio.Task | None, argv: Sequence[str],
              instance: str, state: str, priority: int) -> asyncio.Task:
        """Run a hook once the instance's previous one (`after`) is done; each is
        bounded in time, so a hung hook delays the next by that much at most."""
        task = loop.create_task(_after(after, argv, instance, state, priority))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the running hooks; never raises."""
        if self._tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait(set(self._tasks), timeout=timeout)


async def _after(prev: asyncio.Task | None, argv: Sequence[str], instance: str, state: str, priority: int) -> None:
    if prev is not None:
        with contextlib.suppress(Exception):
            await prev
    await run_notify(argv, instance, state, priority)
