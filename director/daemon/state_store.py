"""What directord keeps in state_dir across runs: owned services, drains, admin drains.

One JSON file, written atomically (unique temp file, fsync, rename, directory
fsync) so a crash never leaves half a file. Without it a restart would forget which services directord made,
and could neither drain them on removal nor tell them from hand-made ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from director.config.model import Config
from director.daemon.private_dir import unsafe_directory
from director.daemon.steady_clock import ClockAnchor
from director.ipvs.model import DestKey, ServiceKey
from director.reconcile.desired import RealServerState, StateKey, dest_key
from director.reconcile.plan import Book

STATE_FILE = "state.json"
LOCK_FILE = "lock"
FORMAT_VERSION = 1
MAX_STATE_BYTES = 16 * 1024 * 1024  # far above any real table's state


class StateError(RuntimeError):
    """state_dir cannot be read or written."""


@dataclass
class AdminDrain:
    """A real server an admin took out; `service` None means every service."""

    address: str
    port: int | None = None
    service: str | None = None

    def matches(self, service_name: str, dest: DestKey) -> bool:
        return (self.address == dest.address
                and (self.port is None or self.port == dest.port)
                and (self.service is None or self.service == service_name))


@dataclass
class State:
    book: Book = field(default_factory=Book)
    admin_drains: list[AdminDrain] = field(default_factory=list)
    clock: ClockAnchor | None = None  # the steady clock's offset in this boot


def admin_drain_states(config: Config, drains: list[AdminDrain]) -> dict[StateKey, RealServerState]:
    """Real-server states for the servers an admin drained (everything else: default)."""
    states: dict[StateKey, RealServerState] = {}
    for vs in config.virtual_servers:
        for rs in vs.real_servers:
            key = dest_key(rs)
            if any(drain.matches(vs.name, key) for drain in drains):
                states[(vs.name, key)] = RealServerState(admin_drained=True)
    return states


def _service_to_json(key: ServiceKey) -> list:
    return [key.family, key.protocol, key.address, key.port, key.fwmark]


def _dest_to_json(key: DestKey | None) -> list | None:
    return None if key is None else [key.family, key.address, key.port]


def encode(state: State) -> dict:
    return {
        "version": FORMAT_VERSION,
        "owned": [{"service": _service_to_json(k), "drain_timeout": t} for k, t in state.book.owned.items()],
        "draining": [{"service": _service_to_json(s), "dest": _dest_to_json(d), "since": t}
                     for (s, d), t in state.book.draining.items()],
        "admin_drains": [{"address": a.address, "port": a.port, "service": a.service}
                         for a in state.admin_drains],
    } | ({"clock": {"boot_id": state.clock.boot_id, "offset": state.clock.offset}} if state.clock else {})


def decode(data: object) -> State:
    """The state in `data`, every field's type checked: a file that parses as JSON but holds
    anything else raises StateFormatError rather than failing later inside a pass."""
    top = _table(data, "the file")
    book = Book()
    for item in _items(top, "owned"):
        book.owned[_service(item.get("service"))] = _number(item.get("drain_timeout"), "owned.drain_timeout")
    for item in _items(top, "draining"):
        dest = None if item.get("dest") is None else _dest(item.get("dest"))
        book.draining[(_service(item.get("service")), dest)] = _number(item.get("since"), "draining.since")
    drains = [AdminDrain(_typed(d.get("address"), str, "admin_drains.address"),
                         _optional(d.get("port"), int, "admin_drains.port"),
                         _optional(d.get("service"), str, "admin_drains.service"))
              for d in _items(top, "admin_drains")]
    return State(book, drains, _clock(top.get("clock")))


def _clock(value: object) -> ClockAnchor | None:
    if value is None:
        return None
    table = _table(value, "clock")
    return ClockAnchor(_typed(table.get("boot_id"), str, "clock.boot_id"), _number(table.get("offset"), "clock.offset"))


class StateFormatError(ValueError):
    """The state file is readable but not a state this version wrote."""


def _table(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise StateFormatError(f"{what} is {type(value).__name__}, not an object")
    return value


def _items(top: dict, key: str) -> list[dict]:
    items = top.get(key, [])
    if not isinstance(items, list):
        raise StateFormatError(f"{key} is {type(items).__name__}, not a list")
    return [_table(item, f"an entry of {key}") for item in items]


def _typed(value: object, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise StateFormatError(f"{what} is {value!r:.40}, not {kind.__name__}")
    return value


def _optional(value: object, kind: type, what: str) -> Any:
    return None if value is None else _typed(value, kind, what)


def _number(value: object, what: str) -> float:
    # false for nan, the infinities and an int past the largest float (10**400), which
    # math.isfinite would meet with OverflowError, not a ValueError the loader catches
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= sys.float_info.max:
        raise StateFormatError(f"{what} is {value!r:.40}, not a number")
    return float(value)


def _fields(value: object, kinds: tuple[type, ...], what: str) -> list:
    if not isinstance(value, list) or len(value) != len(kinds):
        raise StateFormatError(f"{what} is {value!r:.60}, not a list of {len(kinds)}")
    return [_typed(v, kind, what) for v, kind in zip(value, kinds, strict=True)]


def _service(value: object) -> ServiceKey:
    return ServiceKey(*_fields(value, (int, str, str, int, int), "a service key"))


def _dest(value: object) -> DestKey:
    return DestKey(*_fields(value, (int, str, int), "a real server key"))


class StateStore:
    """state_dir/state.json. The directory must be root's own (not group or world
    writable): a file written there decides what directord deletes from the kernel."""

    def __init__(self, state_dir: str) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / STATE_FILE
        self._lock: int | None = None

    def lock(self) -> None:
        """Hold state_dir for this process (one daemon, or one `apply`, at a time)."""
        self._check_dir()
        try:
            fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"{self.dir / LOCK_FILE}: cannot open: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise StateError(f"{self.dir}: in use by another directord (a running daemon or apply)") from exc
        self._lock = fd

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def load(self) -> State:
        """The saved state; a corrupt file is moved aside (logged) and the state starts
        empty, so one bad file cannot keep the daemon from starting."""
        self._check_dir()
        try:
            return decode(json.loads(self._read()))
        except FileNotFoundError:
            return State()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {exc.strerror}") from exc
        except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, too deep or too big, wrong shape
            import structlog  # here: the man page build reads STATE_FILE with the standard library only

            aside = self._move_aside()
            structlog.get_logger("directord").error(
                "state file corrupt, moved aside; starting with an empty state", path=str(self.path),
                reason=str(exc)[:200], moved_to=aside)
            return State()

    def save(self, state: State) -> None:
        """A unique temp file in state_dir (O_EXCL: never through a planted symlink),
        fsynced, renamed over the state, and the directory fsynced."""
        tmp: str | None = None
        try:
            self._check_dir()
            fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=self.dir)
            with os.fdopen(fd, "w") as handle:
                json.dump(encode(state), handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            tmp = None
            _fsync_dir(self.dir)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _read(self) -> str:
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
        if len(data) > MAX_STATE_BYTES:
            raise StateFormatError(f"larger than {MAX_STATE_BYTES} bytes")
        return data.decode()  # UnicodeDecodeError is a ValueError: corrupt

    def _move_aside(self) -> str:
        aside = self.path.with_name(f"{STATE_FILE}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            raise StateError(f"{self.path}: corrupt and cannot be moved aside: {exc.strerror}") from exc
        return str(aside)

    def _check_dir(self) -> None:
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(self.dir)
        except OSError as exc:
            raise StateError(f"{self.dir}: cannot create: {exc.strerror}") from exc
        problem = unsafe_directory(info)
        if problem:
            raise StateError(f"{self.dir}: {problem}; state_dir must be a directory of its own, mode 0700")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
