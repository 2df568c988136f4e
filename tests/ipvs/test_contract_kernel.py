"""The IPVS backend contract (tests/ipvs/contract.py) on the kernel, over netlink."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from director.ipvs.kernel import NetlinkIpvs
from director.ipvs.model import IpvsBackend
from tests.ipvs.contract import *  # noqa: F403  (the contract's cases)
from tests.ipvs.contract import LOCAL, SYNC_IFACE
from tests.kernel_util import ipvsadm


@pytest.fixture(scope="module")
def sync_iface() -> Iterator[str]:
    """A multicast-capable interface with a local address, for the kernel cases; removed afterwards so
    later tests in the same VM boot do not inherit its address and route."""
    subprocess.run(["ip", "link", "add", SYNC_IFACE, "type", "dummy"], check=True)
    subprocess.run(["ip", "link", "set", SYNC_IFACE, "multicast", "on", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{LOCAL}/24", "dev", SYNC_IFACE], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    try:
        yield SYNC_IFACE
    finally:
        subprocess.run(["ip", "link", "del", SYNC_IFACE], check=False)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[IpvsBackend]:
    request.getfixturevalue("sync_iface")
    kernel = NetlinkIpvs()  # IpvsUnavailable here fails the test: no silent skip
    saved = kernel.get_timeouts()
    try:
        yield kernel
    finally:
        for daemon in kernel.sync_daemons():
            kernel.stop_sync_daemon(daemon.state)
        kernel.set_timeouts(saved)
        kernel.close()
        ipvsadm("-C")


