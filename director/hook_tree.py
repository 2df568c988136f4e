"""Ending a hook (exec check, tracked script, notify) with everything it started, and the
parts of its run the callers share: its output drained within a bound, its reaping.

A hook runs in its own process group, but a child can leave the group with
setsid(), and killpg then misses it. On a timeout the hook's descendants are
found through /proc (parent links, while the hook still lives) and killed with
the group; a process that still holds the hook's output pipe after the hook
exited is part of it too. A child that both leaves the group and lets go of the
output, then outlives its parent, has daemonized on purpose and is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import IO, Protocol

READ_CHUNK = 65536
OUTPUT_GRACE = 0.05  # after a hook exits, how long output still in flight is awaited


def kill_tree(pid: int, output_fd: int | None = None) -> None:
    """SIGKILL `pid`'s group, its descendants, and any holder of `output_fd`'s pipe."""
    members = descendants(pid) | (pipe_holders(output_fd) if output_fd is not None else set())
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for member in members - {os.getpid()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def pipe_holders(fd: int) -> set[int]:
    """Processes other than this one with an end of `fd`'s pipe open."""
    target = f"pipe:[{os.fstat(fd).st_ino}]"
    holders: set[int] = set()
    for pid in _pids():
        with contextlib.suppress(OSError):
            for entry in os.scandir(f"/proc/{pid}/fd"):
                if os.readlink(entry.path) == target:
                    holders.add(pid)
                    break
    return holders - {os.getpid()}


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read(4096)
        except OSError:
            continue  # exited while we looked
        fields = stat.rsplit(b")", 1)[-1].split()  # the name in parentheses may hold anything
        if len(fields) > 1 and fields[1].isdigit():
            parents[pid] = int(fields[1])
    return parents


class BoundedOutput:
    """Drains a hook's output pipe without blocking, keeping only its first `limit` bytes,
    so a hook that floods its output costs no memory."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, limit: int) -> None:
        self.loop, self.fd, self.limit = loop, fd, limit
        self.kept = bytearray()
        self.eof = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
        elif len(self.kept) < self.limit:
            self.kept += chunk[: self.limit - len(self.kept)]

    def close(self) -> None:
        self.loop.remove_reader(self.fd)
        if not self.eof.done():
            self.eof.set_result(None)


def reap_when_dead(loop: asyncio.AbstractEventLoop, proc: Hook, pidfd: int) -> None:
    """Reap a killed hook whenever it is gone, without waiting for it now."""

    def reap() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        proc.wait()

    if proc.poll() is not None:
        os.close(pidfd)
    else:
        loop.add_reader(pidfd, reap)


class Hook(Protocol):
    """What run_to_end needs of a started hook: a subprocess.Popen, or the like."""

    pid: int
    stdout: IO[bytes] | None

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


async def run_to_end(proc: Hook, limit: int, timeout: float | None = None) -> tuple[int, bytes]:
    """Wait for a started hook (its stdout a pipe) to exit: its exit code and the first `limit`
    bytes of its output. Past `timeout` (TimeoutError), or when cancelled, it is killed with
    everything it started and reaped whenever it is gone."""
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(proc.pid)
    output = BoundedOutput(loop, proc.stdout.fileno(), limit)
    exited = loop.create_future()
    loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
    try:
        await asyncio.wait_for(exited, timeout)
    except BaseException:  # the timeout, or the caller giving up (its own deadline, a stop)
        loop.remove_reader(pidfd)
        kill_tree(proc.pid, proc.stdout.fileno())  # also what left the group with setsid
        reap_when_dead(loop, proc, pidfd)
        output.close()
        proc.stdout.close()
        raise
    loop.remove_reader(pidfd)
    os.close(pidfd)
    code = proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children it left behind; ends their hold on stdout
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(output.eof), OUTPUT_GRACE)
        if not output.eof.done():  # something outside the group still holds stdout
            kill_tree(proc.pid, proc.stdout.fileno())
    finally:
        output.close()
        proc.stdout.close()
    return code, bytes(output.kept)
