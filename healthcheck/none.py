"""The `none` check: always up, for services whose real servers are not checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return ProbeResult(True, 0.0, "no check configured")
