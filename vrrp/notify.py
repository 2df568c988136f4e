"""Run the notify hook: `argv + [instance, state, priority]`, no shell, bounded time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog

log = structlog.get_logger("vrrp.notify")
NOTIFY_TIMEOUT = 10.0


async def run_notify(
    argv: Sequence[str], instance: str, state: str, priority: int,
    timeout: float = NOTIFY_TIMEOUT,
) -> int | None:
    """Run the hook and return its exit code; None if it could not run or timed out."""
    if not argv:
        return None
    args = [*argv, instance, state, str(priority)]
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        log.warning("notify failed to start", argv=args, error=str(exc))
        return None
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        log.warning("notify killed after timeout", argv=args, timeout=timeout)
        return None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
