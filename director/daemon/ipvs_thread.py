"""The one worker thread that does the daemon's blocking IPVS and disk work.

Netlink calls and state-file writes block; run on the event loop they would delay
health checks and status. One thread, not a pool: the kernel table then sees the
daemon's writes in the order they were asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class IpvsThread:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ipvs")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the worker thread, awaited from the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        """Wait for the work already queued, then end the thread."""
        self._executor.shutdown(wait=True)
