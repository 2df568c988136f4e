"""Each configured check once, concurrently: what `directord probe` prints."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from healthcheck import probes
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

MAX_CONCURRENT = 256  # keeps a huge config within the fd limit


async def probe_all(
    pairs: Iterable[tuple[Target, CheckConfig]],
    *,
    concurrency: int = MAX_CONCURRENT,
    probe: probes.ProbeFn = probes.probe,
) -> list[ProbeResult]:
    """One result per pair, in order. Identical pairs are probed once."""
    pairs = list(pairs)
    gate = asyncio.Semaphore(max(1, concurrency))
    unique: dict[tuple[Target, CheckConfig], asyncio.Task[ProbeResult]] = {}

    async def one(target: Target, check: CheckConfig) -> ProbeResult:
        async with gate:
            return await probe(target, check)

    for pair in pairs:
        if pair not in unique:
            unique[pair] = asyncio.ensure_future(one(*pair))
    if unique:
        await asyncio.wait(unique.values())
    return [unique[pair].result() for pair in pairs]
