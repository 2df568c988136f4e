"""The thin I/O edge shared by the probes: one deadline, bounded reads, plain reasons.

Every probe body runs under a single `asyncio.timeout(check.timeout)`; the body
names the phase it is in, so a timeout says where it stopped ("timeout after 1.0s
reading headers"). Errors become short sentences a person can act on.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config import CheckConfig

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
    """Run `body` under the check's one deadline and turn any outcome into a result."""
    loop = asyncio.get_running_loop()
    phase = Phase()
    started = loop.time()
    deadline = asyncio.timeout(check.timeout)
    try:
        async with deadline:
            verdict = await body(phase)
    except TimeoutError as exc:
        expired = deadline.expired()
        reason = timeout_reason(check, phase) if expired else describe_error(exc)
        return ProbeResult(False, loop.time() - started, reason)
    except ProbeError as exc:
        return ProbeResult(False, loop.time() - started, clip(str(exc)))
    except (OSError, EOFError, ValueError, UnicodeError) as exc:
        return ProbeResult(False, loop.time() - started, describe_error(exc))
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


def new_socket(target: Target, kind: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setblocking(False)
    return sock


async def connect(target: Target, phase: Phase) -> socket.socket:
    """A connected non-blocking TCP socket (no DNS: targets are addresses)."""
    sock = new_socket(target, socket.SOCK_STREAM)
    phase.name = "connecting"
    try:
        await asyncio.get_running_loop().sock_connect(sock, (target.address, target.port))
    except BaseException:
        sock.close()
        raise
    return sock


async def open_stream(
    target: Target,
    phase: Phase,
    limit: int,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[asyncio.Transport, StreamProtocol]:
    sock = await connect(target, phase)
    loop = asyncio.get_running_loop()
    if ssl_context is not None:
        phase.name = "in TLS handshake"
    try:
        transport, proto = await loop.create_connection(
            lambda: StreamProtocol(limit),
            sock=sock,
            ssl=ssl_context,
            server_hostname=server_hostname if ssl_context is not None else None,
        )
    except BaseException:
        sock.close()
        raise
    return transport, proto


@functools.lru_cache(maxsize=64)
def compile_bytes(pattern: str) -> re.Pattern[bytes]:
    """Regexes from config are text; replies are bytes (UTF-8 literals match as bytes)."""
    return re.compile(pattern.encode("utf-8"))


def closed(transport: asyncio.BaseTransport | None) -> None:
    """Drop a connection at once: the verdict is in, unread data is not wanted."""
    if transport is not None:
        transport.abort()
