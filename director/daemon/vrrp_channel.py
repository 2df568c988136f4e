"""The channel between `directord run` and its VRRP child: typed messages in frames.

Each frame is a 4-byte size and a pickled message. Both ends are the same program
on a private socketpair, so pickle carries the config model as it is; the
unpickler builds only this module's messages, the config model's classes and
addresses (and networks), nothing else. A frame above `MAX_FRAME` cannot be skipped safely and
breaks the channel (`ChannelError`). A frame that is not a message this end
accepts, or whose fields have the wrong types, is counted, logged and skipped:
the frames around it are intact.

Requests carry an id that their reply repeats; `Refused` answers any request the
child could not carry out.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import pickle
import struct
import types
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

import structlog

from director.config import model
from director.config.model import VrrpInstanceConfig

log = structlog.get_logger("directord")

FRAME = struct.Struct("!I")
MAX_FRAME = 16 << 20  # a snapshot of a few hundred instances is a few hundred KB


class ChannelError(RuntimeError):
    """The channel cannot carry on: a frame too large to send or to skip."""


class Malformed(ValueError):
    """A frame that is not an acceptable message; `reason` is the counter's key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


# --- parent -> child ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Start the instances. Until then the child sends nothing: a daemon refused at
    its control socket never sends a single advert."""


@dataclass(frozen=True)
class Stop:
    """Stop gracefully: priority 0, VIPs handed over."""


@dataclass(frozen=True)
class SetTrackedVirtualServer:
    """A tracked virtual server's quorum changed (ok=False: lost). No reply."""

    name: str
    ok: bool


@dataclass(frozen=True)
class SetTrackedScript:
    """A tracked script turned ok or failed (after rise/fall). No reply."""

    name: str
    ok: bool


@dataclass(frozen=True)
class SetTrackedFile:
    """A tracked file's value changed (0 for a missing or unreadable file). No reply."""

    name: str
    value: int


@dataclass(frozen=True)
class SetTrackedProcess:
    """A tracked process count gained or lost its quorum (after the delays). No reply."""

    name: str
    ok: bool


@dataclass(frozen=True)
class Snapshot:
    request_id: int


@dataclass(frozen=True)
class Failover:
    request_id: int
    name: str


@dataclass(frozen=True)
class ReleaseHold:
    """Let an instance that gave up master (failover) preempt again. Reply: FailoverReply,
    handed_over=False when it held nothing."""

    request_id: int
    name: str


@dataclass(frozen=True)
class Reconfigure:
    request_id: int
    instances: tuple[VrrpInstanceConfig, ...]


@dataclass(frozen=True)
class Ping:
    """Is the child's loop answering? (the systemd watchdog depends on it)"""

    request_id: int


Request = Snapshot | Failover | ReleaseHold | Reconfigure | Ping
ToChild = Start | Stop | SetTrackedVirtualServer | SetTrackedScript | SetTrackedFile | SetTrackedProcess | Request


# --- child -> parent: replies ---------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotReply:
    request_id: int
    snapshot: dict[str, Any]


@dataclass(frozen=True)
class FailoverReply:
    request_id: int
    handed_over: bool  # False: the instance was not master


@dataclass(frozen=True)
class Done:
    """A reconfigure or ping carried out."""

    request_id: int


@dataclass(frozen=True)
class Refused:
    request_id: int
    error: str


Reply = SnapshotReply | FailoverReply | Done | Refused


# --- child -> parent: events ----------------------------------------------------------------------


@dataclass(frozen=True)
class Transitioned:
    """An instance changed state; the snapshot is the child's state right after."""

    instance: str
    state: str
    snapshot: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    """The child's VRRP failed; it exits next."""

    reason: str


@dataclass(frozen=True)
class Signalled:
    """The child got a stop signal (e.g. systemd signalled the whole group)."""

    signal: str


ToParent = Reply | Transitioned | Failed | Signalled
# what each end accepts: the message classes of the unions above
TO_CHILD: tuple[type, ...] = get_args(ToChild)
REPLIES: tuple[type, ...] = get_args(Reply)
TO_PARENT: tuple[type, ...] = get_args(ToParent)
_HINTS = {cls: get_type_hints(cls) for cls in (*TO_CHILD, *TO_PARENT)}


def operation(request: Request) -> str:
    """The request's name in errors and logs: "snapshot", "failover", ..."""
    return type(request).__name__.lower()


# --- frames ---------------------------------------------------------------------------------------


def encode(message: ToChild | ToParent) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(body) > MAX_FRAME:
        raise ChannelError(f"VRRP channel frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return FRAME.pack(len(body)) + body


def decode(body: bytes, accept: tuple[type, ...]) -> Any:
    """The message in one frame's body, if it is one of `accept`; Malformed otherwise."""
    try:
        message = _Unpickler(io.BytesIO(body)).load()
    except Exception as exc:  # whatever the bytes are, they are no message
        raise Malformed("undecodable", f"{type(exc).__name__}: {exc}") from None
    if type(message) not in accept:
        raise Malformed("unknown message", type(message).__name__)
    for f in fields(message):
        if not _conforms(getattr(message, f.name), _HINTS[type(message)][f.name]):
            raise Malformed("bad field", f"{type(message).__name__}.{f.name}")
    return message


class FrameReader:
    """Messages from one end of the channel; `dropped` counts the skipped frames by reason."""

    def __init__(self, reader: asyncio.StreamReader, accept: tuple[type, ...], side: str) -> None:
        self.accept, self.side = accept, side
        self.dropped: Counter[str] = Counter()
        self._reader = reader

    async def read(self) -> Any:
        """The next acceptable message, or None at the end of the stream."""
        while (body := await self._body()) is not None:
            try:
                return decode(body, self.accept)
            except Malformed as exc:
                self.dropped[exc.reason] += 1
                log.warning("VRRP channel frame dropped", side=self.side, reason=exc.reason, detail=exc.detail)
        return None

    async def _body(self) -> bytes | None:
        try:
            (size,) = FRAME.unpack(await self._reader.readexactly(FRAME.size))
            if size > MAX_FRAME:
                raise ChannelError(f"VRRP channel frame of {size} bytes exceeds {MAX_FRAME}")
            return await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None


_MESSAGES = {cls.__name__: cls for cls in (*TO_CHILD, *TO_PARENT)}
_ADDRESSES = frozenset({"IPv4Address", "IPv6Address", "IPv4Interface", "IPv6Interface", "IPv4Network", "IPv6Network"})


class _Unpickler(pickle.Unpickler):
    """Builds messages, the config model's classes and addresses; refuses anything else."""

    def find_class(self, module: str, name: str) -> Any:
        found: Any = None
        if module == __name__:
            found = _MESSAGES.get(name)
        elif module == model.__name__:
            found = getattr(model, name, None)
        elif module == "ipaddress" and name in _ADDRESSES:
            found = getattr(ipaddress, name)
        if not isinstance(found, type):
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed on the VRRP channel")
        return found


def _conforms(value: Any, hint: Any) -> bool:
    """Top-level type check; a `tuple[X, ...]` checks its items too."""
    origin = get_origin(hint)
    if origin is None:
        return hint is Any or isinstance(value, hint)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, arg) for arg in get_args(hint))
    if not isinstance(value, origin):
        return False
    args = get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return all(_conforms(item, args[0]) for item in value)
    return True
