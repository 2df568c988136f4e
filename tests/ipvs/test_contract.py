"""The IPVS backend contract (tests/ipvs/contract.py) on the in-memory backend."""

from __future__ import annotations

import pytest

from director.ipvs.memory import MemoryIpvs
from director.ipvs.model import IpvsBackend
from tests.ipvs.contract import *  # noqa: F403  (the contract's cases)


@pytest.fixture
def backend() -> IpvsBackend:
    return MemoryIpvs()
