"""Client load for a drill, run inside the lab's client namespace.

    python -m director.drill.load --vip 198.51.100.10 --rate 10 --long 12

New HTTP connections at a fixed rate (short timeouts) plus long-lived streaming connections.
Prints `ready` once the long-lived connections are open, runs until stdin closes, then prints
one JSON document: every request (time, ok, server) and every long-lived connection's fate.
Times are CLOCK_REALTIME (time.time()), the drill's one clock (see director.drill.runner), or
CLOCK_MONOTONIC with `--clock monotonic` (the chaos soak steps the wall clock). With `--reopen`
a lost long-lived connection is replaced a second later, so a long soak keeps some to lose.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass
class LongConn:
    id: int
    opened: float
    last_byte: float
    closed: float | None = None
    reason: str = ""


@dataclass
class Load:
    vip: str
    http_port: int = 80
    stream_port: int = 9000
    timeout: float = 1.0
    clock: Callable[[], float] = time.time
    reopen: bool = False
    requests: list[tuple[float, bool, str]] = field(default_factory=list)
    conns: list[LongConn] = field(default_factory=list)

    async def request(self) -> None:
        """One GET on a new connection; the body names the real server."""
        started = self.clock()
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.vip, self.http_port), self.timeout)
            writer.write(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), self.timeout)  # to EOF: the body may come apart from the head
            head, _, body = data.partition(b"\r\n\r\n")
            ok = head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0] + b" "
            self.requests.append((started, ok, body.decode(errors="replace").strip() if ok else "bad reply"))
        except (OSError, TimeoutError) as exc:
            self.requests.append((started, False, type(exc).__name__))
        finally:
            if writer is not None:
                writer.close()

    async def hold(self, conn: LongConn, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(256)
                if not data:
                    conn.reason = "closed by peer"
                    break
                conn.last_byte = self.clock()
        except OSError as exc:
            conn.reason = type(exc).__name__
        conn.closed = self.clock()

    async def connect(self) -> tuple[LongConn, asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.vip, self.stream_port), 10)
        now = self.clock()
        conn = LongConn(len(self.conns), now, now)
        self.conns.append(conn)
        return conn, reader, writer

    async def keep(self, conn: LongConn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Hold the connection; with `reopen`, replace each lost one a second later."""
        while True:
            try:
                await self.hold(conn, reader)
            finally:
                writer.close()
            if not self.reopen:
                return
            while True:
                await asyncio.sleep(1.0)
                with contextlib.suppress(OSError, TimeoutError):
                    conn, reader, writer = await self.connect()
                    break

    async def open_long(self, count: int) -> list[asyncio.Task]:
        opened = [await self.connect() for _ in range(count)]
        return [asyncio.create_task(self.keep(*conn)) for conn in opened]

    async def run(self, rate: float, long: int) -> None:
        holders = await self.open_long(long)
        print("ready", self.clock(), flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(0, lambda: stop.set() if not os.read(0, 64) else None)
        pending: set[asyncio.Task] = set()
        tick = self.clock()
        while not stop.is_set():
            task = asyncio.create_task(self.request())
            pending.add(task)
            task.add_done_callback(pending.discard)
            tick += 1.0 / rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, tick - self.clock()))
        if pending:
            await asyncio.wait(pending, timeout=self.timeout * 2 + 1)
        for task in holders:
            task.cancel()

    def result(self) -> dict:
        return {"requests": self.requests, "long": [asdict(c) for c in self.conns], "end": self.clock()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vip", required=True)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--long", type=int, default=12)
    parser.add_argument("--stream-port", type=int, default=9000)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--clock", choices=("realtime", "monotonic"), default="realtime")
    parser.add_argument("--reopen", action="store_true", help="replace lost long-lived connections")
    args = parser.parse_args()
    clock = time.monotonic if args.clock == "monotonic" else time.time
    load = Load(args.vip, stream_port=args.stream_port, timeout=args.timeout, clock=clock, reopen=args.reopen)
    try:
        asyncio.run(load.run(args.rate, args.long))
    except (OSError, TimeoutError) as exc:
        print(json.dumps({"error": f"could not open long-lived connections: {exc}"}), flush=True)
        return
    print(json.dumps(load.result()), flush=True)


if __name__ == "__main__":
    main()
