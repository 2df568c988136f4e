"""Without the IPVS generic netlink family, NetlinkIpvs says so in words (any kernel)."""

from __future__ import annotations

import pytest

from director.ipvs.kernel import UNAVAILABLE, NetlinkIpvs
from director.ipvs.model import IpvsUnavailable


def test_missing_family_raises_ipvs_unavailable() -> None:
    # A family no kernel has stands in for a kernel without ip_vs, so this runs anywhere.
    with pytest.raises(IpvsUnavailable, match="ip_vs module not loaded or not built"):
        NetlinkIpvs(timeout=2.0, family_name="NOSUCHFAMILY")
    assert UNAVAILABLE == "the kernel has no IPVS (ip_vs module not loaded or not built)"
