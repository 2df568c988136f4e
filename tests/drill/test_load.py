"""The drill's client load names the real server from the body even when the body arrives in a
later segment than the head (busybox httpd writes them apart), and counts a refused one as failed."""

from __future__ import annotations

import asyncio

from director.drill.load import Load


async def split_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(b"rs2\n")
    writer.close()


async def scenario() -> list[tuple[float, bool, str]]:
    server = await asyncio.start_server(split_reply, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    load = Load("127.0.0.1", http_port=port, timeout=2.0)
    await load.request()
    server.close()
    await server.wait_closed()
    await load.request()  # nobody listens now
    return load.requests


def test_body_after_head_and_refused() -> None:
    (_, ok1, server1), (_, ok2, reason2) = asyncio.run(scenario())
    assert (ok1, server1) == (True, "rs2")
    assert not ok2 and reason2 == "ConnectionRefusedError"
