"""`[global] auto_reload`: reload when the config file changes (ldirectord's autoreload).

inotify watches the file's directory, not the file: editors and config management
replace a file by writing a new one and renaming it over the old, which a watch on the
old inode would never see. Changes to the file's name are gathered for `SETTLE` seconds
(one save is several events, a deploy may touch the file twice) and then reported once;
the daemon's own reload then keeps the running config if the new one is invalid. The
event parser is sans-IO; a short or garbled read ends the batch, never the daemon.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import struct
from collections.abc import Callable

import structlog

log = structlog.get_logger("directord")

SETTLE = 1.0  # seconds of quiet after the last change before the reload
READ_SIZE = 65536  # bytes read from the inotify descriptor at once

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
WATCHED = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB
_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name


def parse_events(data: bytes) -> list[tuple[int, int, str]]:
    """(watch, mask, name) of each whole event in `data`; a truncated tail is dropped."""
    events, offset = [], 0
    while offset + _HEADER.size <= len(data):
        wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        if offset + length > len(data):
            break
        name = data[offset:offset + length].split(b"\0", 1)[0].decode("utf-8", "replace")
        offset += length
        events.append((wd, mask, name))
    return events


def touches(events: list[tuple[int, int, str]], name: str, any_file: set[int] | frozenset[int] = frozenset()) -> bool:
    """Whether the events change the file `name`, or any file but editors' scratch files in a
    watch of `any_file` (a directory of fragments), or overflowed (so may have)."""
    return any(mask & IN_Q_OVERFLOW
               or (mask & WATCHED and (event_name == name or (wd in any_file and _kept(event_name))))
               for wd, mask, event_name in events)


def _kept(name: str) -> bool:
    """Not an editor's swap, backup or temporary file."""
    return bool(name) and not name.startswith((".", "#")) and not name.endswith(("~", ".swp", ".tmp"))


class ConfigWatch:
    """Calls `on_change()` on the loop once a change of `path`, or of a file in the directory
    of one of its `fragments`, has settled."""

    def __init__(self, path: str, on_change: Callable[[], None], settle: float = SETTLE,
                 fragments: tuple[str, ...] = ()) -> None:
        self.path = os.path.abspath(path)
        self.fragment_dirs = self.dirs_of(fragments)
        self._any_file: set[int] = set()
        self.on_change = on_change
        self.settle = settle
        self.changes = 0  # reloads asked for
        self._fd = -1
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @staticmethod
    def dirs_of(fragments: tuple[str, ...]) -> list[str]:
        return sorted({os.path.dirname(os.path.abspath(f)) for f in fragments})

    def start(self) -> None:
        """OSError names what cannot be watched."""
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        main = os.path.dirname(self.path)
        for directory in [main, *self.fragment_dirs]:
            wd = libc.inotify_add_watch(fd, directory.encode(), WATCHED)
            if wd < 0:
                err = ctypes.get_errno()
                os.close(fd)
                raise OSError(err, os.strerror(err), directory)
            if directory in self.fragment_dirs:
                self._any_file.add(wd)
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._readable)
        log.info("watching the config for changes", config=self.path)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("config watch read failed", error=str(exc))
            return
        if touches(parse_events(data), os.path.basename(self.path), self._any_file):
            self._arm()

    def _arm(self) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self.settle, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if not os.path.exists(self.path):
            log.warning("config file gone; keeping the running config until it is back", config=self.path)
            return
        self.changes += 1
        log.info("config changed, reloading", config=self.path)
        self.on_change()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd >= 0:
            if self._loop is not None:
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
