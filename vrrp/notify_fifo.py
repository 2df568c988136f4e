"""The notify FIFO: each state change as one line, for a reader that wants them in order.

It is opened for reading and writing, so a write neither fails for want of a reader nor
waits for one: when nobody drains the pipe and it is full, the line is dropped (the caller
counts it). A path that exists as something other than a FIFO, or as a symbolic link, is
refused, never opened.
"""

from __future__ import annotations

import contextlib
import os
import stat

import structlog

log = structlog.get_logger("vrrp.notify")


class NotifyFifo:
    def __init__(self) -> None:
        self.path = ""
        self.fd: int | None = None

    def write(self, path: str, line: bytes) -> bool:
        """Write `line` to the FIFO at `path` (opened, or created mode 0600, on first use or
        when the path changed); False when it was not written."""
        if path != self.path:
            self.close()
            self.path, self.fd = path, _open(path) if path else None
        if self.fd is None:
            return False
        try:
            return os.write(self.fd, line) == len(line)  # a line under PIPE_BUF goes whole or not at all
        except BlockingIOError:
            return False
        except OSError as exc:
            log.warning("notify fifo write failed", path=path, error=str(exc))
            return False

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = None
        self.path = ""


def _open(path: str) -> int | None:
    try:
        with contextlib.suppress(FileExistsError):
            os.mkfifo(path, 0o600)
        if not stat.S_ISFIFO(os.lstat(path).st_mode):
            log.error("notify fifo refused: not a FIFO", path=path)
            return None
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        log.error("notify fifo cannot be opened", path=path, error=str(exc))
        return None
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):  # replaced between the check and the open
        os.close(fd)
        log.error("notify fifo refused: not a FIFO", path=path)
        return None
    return fd
