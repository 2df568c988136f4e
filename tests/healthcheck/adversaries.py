"""Hostile servers, run on the test's own event loop on 127.0.0.1 with a free port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[int]:
    """Run a TCP server; yield its port. Handler tasks are cancelled on exit."""
    tasks: set[asyncio.Task] = set()

    async def wrapped(reader, writer):
        task = asyncio.current_task()
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            tasks.discard(task)
            writer.transport.abort()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.sleep(0)


async def hang(reader, writer):
    """Accept, then say nothing, forever."""
    await asyncio.sleep(3600)


async def trickle(reader, writer):
    """A valid response, one byte per second."""
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1)


def huge_body(counter: list[int]):
    """200 OK then 100 MB; counts what the client actually drew."""

    async def handler(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(1600):
            writer.write(chunk)
            await writer.drain()
            counter[0] += len(chunk)

    return handler


async def rst_after_accept(reader, writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def garbage_status(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(3600)


async def endless_headers(reader, writer):
    """Headers that never end, fast: the header bound must stop the client."""
    writer.write(b"HTTP/1.1 200 OK\r\n")
    while True:
        writer.write(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        await writer.drain()


def reply(data: bytes) -> Handler:
    async def handler(reader, writer):
        with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await reader.readuntil(b"\r\n\r\n")
        writer.write(data)
        await writer.drain()
        await asyncio.sleep(3600)

    return handler


def closed_port() -> int:
    """A port with nothing listening: connect gets RST (refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
