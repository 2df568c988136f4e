"""The long-lived service on the lab's real servers: every connection gets one byte per 100 ms.

A connection that survives a failover keeps receiving bytes; one that breaks sees a reset or
a stall. One process serves every connection from one timer (cheap under emulation).
"""

from __future__ import annotations

import argparse
import asyncio


async def serve(port: int, period: float) -> None:
    writers: set[asyncio.StreamWriter] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)

    server = await asyncio.start_server(accept, "0.0.0.0", port, reuse_address=True)
    async with server:
        while True:
            await asyncio.sleep(period)
            for writer in list(writers):
                if writer.is_closing():
                    writers.discard(writer)
                    continue
                try:
                    writer.write(b"x")
                except (ConnectionError, OSError):
                    writers.discard(writer)
                    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--period", type=float, default=0.1)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.period))


if __name__ == "__main__":
    main()
