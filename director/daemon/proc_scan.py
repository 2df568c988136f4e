"""Counting processes in /proc for the tracked processes (`[[track_process]]`): the I/O edge.

One pass over /proc reads each process's stat (its name and state: zombies do not count) and,
only when some tracker matches on the command line, the start of its cmdline, bounded by
what a match can use; the matching itself is `healthcheck.tracked.ProcessMatch`. A process
that exits while it is read is skipped. The pass blocks, so the daemon runs it in a thread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from healthcheck.tracked import ProcessMatch

STAT_READ = 1024  # /proc/PID/stat: the name is at most 15 bytes (64 for kernel threads), the state right after


def count(matches: Sequence[ProcessMatch], proc: str = "/proc") -> list[int]:
    """How many live processes match each of `matches`, in one pass."""
    need = max((m.cmdline_bytes for m in matches if m.by_cmdline), default=0)
    counts = [0] * len(matches)
    try:
        names = os.listdir(proc)
    except OSError:
        return counts
    for name in names:
        if not name.isdigit():
            continue
        found = _process(f"{proc}/{name}", need)
        if found is None:
            continue
        comm, cmdline = found
        for index, match in enumerate(matches):
            if match.matches(comm, cmdline):
                counts[index] += 1
    return counts


def _process(path: str, need: int) -> tuple[str, bytes | None] | None:
    """(name, the first `need` bytes of cmdline or None) of a live process; None for a zombie or a gone one."""
    stat = _read(f"{path}/stat", STAT_READ)
    if stat is None:
        return None
    head, sep, tail = stat.rpartition(b")")  # the name in parentheses may hold anything, even ")"
    start = head.find(b"(")
    if not sep or start < 0 or tail[1:2] == b"Z":
        return None
    comm = head[start + 1:].decode("utf-8", "replace")
    cmdline = _read(f"{path}/cmdline", need) if need else None
    if need and cmdline is None:
        return None
    return comm, cmdline


def _read(path: str, limit: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)
