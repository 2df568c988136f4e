"""The thin I/O edge shared by the probes: one deadline, bounded reads, plain reasons.

Every probe body runs under a single deadline, `check.timeout`, covering connect,
TLS, request and reply; the body names the phase it is in, so a timeout says where
it stopped ("timeout after 1.0s reading headers"). Errors become short sentences a
person can act on.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

MAX_REASON = 200


class ProbeError(Exception):
    """A failure whose message is already the reason a person reads."""


class Phase:
    """What the probe is doing now; read when the deadline fires."""

    __slots__ = ("name",)

    def __init__(self, name: str = "connecting") -> None:
        self.name = name


Verdict = tuple[bool, str] | tuple[bool, str, int | None]


async def run_probe(
    check: CheckConfig, body: Callable[[Phase], Awaitable[Verdict]]
) -> ProbeResult:
    """Run `body` under the check's one deadline and turn any outcome into a result.

    The deadline is one loop timer that cancels this task (what asyncio.timeout does,
    with less bookkeeping: this runs thousands of times a second).
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    phase = Phase()
    started = loop.time()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    deadline = loop.call_at(started + check.timeout, expire)
    try:
        verdict = await body(phase)
    except asyncio.CancelledError:
        if not expired:
            raise
        task.uncancel()
        return ProbeResult(False, loop.time() - started, timeout_reason(check, phase))
    except ProbeError as exc:
        return ProbeResult(False, loop.time() - started, clip(str(exc)))
    except (OSError, EOFError, ValueError, UnicodeError) as exc:
        return ProbeResult(False, loop.time() - started, describe_error(exc))
    finally:
        deadline.cancel()
    ok, reason, *weight = verdict
    return ProbeResult(ok, loop.time() - started, clip(reason), weight[0] if weight else None)


def timeout_reason(check: CheckConfig, phase: Phase) -> str:
    return f"timeout after {float(check.timeout)}s {phase.name}"


def clip(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.EPIPE: "connection closed by peer (broken pipe)",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EADDRNOTAVAIL: "address not available",
}


def describe_error(exc: BaseException) -> str:
    """One short sentence for an exception from a socket, TLS or a parser."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = (exc.verify_message or str(exc)).rstrip(".")
        return clip(f"TLS certificate verify failed: {detail[:1].lower()}{detail[1:]}")
    if isinstance(exc, ssl.SSLError):
        return clip(f"TLS error: {exc.reason or exc}")
    if isinstance(exc, OSError) and exc.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[exc.errno]
    if isinstance(exc, ConnectionError):
        return "connection closed by peer"
    if isinstance(exc, OSError) and exc.strerror:
        return clip(exc.strerror.lower())
    return clip(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


class StreamProtocol(asyncio.Protocol):
    """Buffers at most about `limit` bytes: reading pauses until the probe consumes."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._eof = False
        self._exc: BaseException | None = None
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= self.limit and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._exc = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        """Whatever has arrived (at least one byte), or b"" at end of stream."""
        while not self._buf:
            if self._exc is not None:
                raise self._exc
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buf)
        self._buf.clear()
        if self._paused and self.transport and not self.transport.is_closing():
            self._paused = False
            self.transport.resume_reading()
        return data


def new_socket(target: Target, kind: int, source: CheckConfig | None = None) -> socket.socket:
    """A non-blocking socket object for the loop's datagram/TLS APIs, bound as `source` asks."""
    family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
    sock = socket.socket(family, kind | socket.SOCK_NONBLOCK)
    _bound(sock, source)
    return sock


def raw_socket(target: Target, source: CheckConfig | None = None) -> socket.SocketType:
    """A bare non-blocking TCP socket: the C type, without socket.socket's Python layer
    (measurably cheaper at thousands of connects a second; nothing here needs it)."""
    family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
    sock = socket.SocketType(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    _bound(sock, source)
    return sock


def _bound(sock: socket.SocketType, source: CheckConfig | None) -> None:
    if source is not None and (source.bind_address is not None or source.bind_interface):
        try:
            bind_source(sock, source)
        except BaseException:
            sock.close()
            raise


def bind_source(sock: socket.SocketType, check: CheckConfig) -> None:
    """Leave by the check's `bind_interface` and from its `bind_address`. The port is left to
    connect(2) (IP_BIND_ADDRESS_NO_PORT): binding one per socket would spend the ephemeral
    range at thousands of checks."""
    if check.bind_interface:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, check.bind_interface.encode())
    if check.bind_address is not None:
        if sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((str(check.bind_address), 0))


IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # linux/in.h


async def connect(target: Target, phase: Phase, source: CheckConfig | None = None) -> socket.SocketType:
    """A connected non-blocking TCP socket (no DNS: targets are addresses).

    Hand-rolled (connect_ex, then wait for writability) because the loop's
    sock_connect re-resolves the address on every call, which dominated CPU at
    thousands of checks per second.
    """
    sock = raw_socket(target, source)
    phase.name = "connecting"
    try:
        err = sock.connect_ex((target.address, target.port))
        if err == errno.EINPROGRESS:
            await _ready(sock, reading=False)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
    except BaseException:
        sock.close()
        raise
    return sock


async def _ready(sock: socket.SocketType, reading: bool) -> None:
    """Wait until the socket is readable (or writable)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fd = sock.fileno()
    if reading:
        loop.add_reader(fd, _set_done, fut)
    else:
        loop.add_writer(fd, _set_done, fut)
    try:
        await fut
    finally:
        if reading:
            loop.remove_reader(fd)
        else:
            loop.remove_writer(fd)


def _set_done(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class SockStream:
    """A plain TCP connection read and written straight off the non-blocking socket.

    No transport or protocol objects: a health check is one request and one short
    reply, and per-connection setup cost is what limits checks per second. Each
    read returns at most `chunk` bytes, so the caller bounds what is read.
    """

    def __init__(self, sock: socket.SocketType, chunk: int) -> None:
        self.sock = sock
        self.chunk = max(1, min(chunk, 65536))

    async def read(self) -> bytes:
        """Some bytes, or b"" at end of stream."""
        while True:
            try:
                return self.sock.recv(self.chunk)
            except (BlockingIOError, InterruptedError):
                await _ready(self.sock, reading=True)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view):]
            except (BlockingIOError, InterruptedError):
                await _ready(self.sock, reading=False)

    def sockname(self) -> tuple:
        return self.sock.getsockname()

    def close(self) -> None:
        self.sock.close()


class TransportStream:
    """The same interface over an asyncio transport (TLS needs one)."""

    def __init__(self, transport: asyncio.Transport, proto: StreamProtocol) -> None:
        self.transport, self.proto = transport, proto

    async def read(self) -> bytes:
        return await self.proto.read()

    async def write(self, data: bytes) -> None:
        self.transport.write(data)

    def sockname(self) -> tuple:
        return self.transport.get_extra_info("sockname")

    def close(self) -> None:
        self.transport.abort()


Stream = SockStream | TransportStream


async def open_stream(
    target: Target,
    phase: Phase,
    limit: int,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    source: CheckConfig | None = None,
) -> Stream:
    """Connect (and handshake TLS if asked), bound as `source` asks. Reads are bounded by about `limit`."""
    raw = await connect(target, phase, source)
    if ssl_context is None:
        return SockStream(raw, limit)
    phase.name = "in TLS handshake"
    sock = socket.socket(fileno=raw.detach())  # the loop's TLS wants the full type
    try:
        transport, proto = await asyncio.get_running_loop().create_connection(
            lambda: StreamProtocol(limit),
            sock=sock,
            ssl=ssl_context,
            server_hostname=server_hostname,
        )
    except BaseException:
        sock.close()
        raise
    return TransportStream(transport, proto)


@functools.lru_cache(maxsize=64)
def compile_bytes(pattern: str) -> re.Pattern[bytes]:
    """Regexes from config are text; replies are bytes (UTF-8 literals match as bytes)."""
    return re.compile(pattern.encode("utf-8"))
