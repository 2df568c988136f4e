"""keepalived's `use_vmac [NAME] [MAC]` and `vmac_xmit_base` imported as keepalived runs them;
what directord does not build (another MAC, use_vmac on an address) stays flagged."""

from __future__ import annotations

import pytest

from director.importer.keepalived import convert
from tests.importer.helpers import imported, notes
from tests.importer.test_keepalived import remarks, write

INSTANCE = """
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 51
{body}
  virtual_ipaddress {{
    {vip}
  }}
}}
"""


def load(tmp_path, body: str, vip: str = "192.0.2.10/24"):
    conv = convert(write(tmp_path, INSTANCE.format(body=body, vip=vip)))
    config, _ = imported(conv, "keepalived")
    return conv, config.vrrp_instances[0]


@pytest.mark.parametrize(("line", "name"), [
    ("use_vmac", "vrrp.51"),
    ("use_vmac vmac51", "vmac51"),
    ("use_vmac vmac51 00:00:5e:00:01:33", "vmac51"),
    ("use_vmac 00:00:5e:00:01", "vrrp.51"),  # five octets: the VRID is the sixth
])
def test_use_vmac_carries_over_unflagged(tmp_path, line: str, name: str) -> None:
    conv, vi = load(tmp_path, f"  {line}")
    assert (vi.use_vmac, vi.vmac_name, vi.vmac_xmit_base) == (True, name, False)
    assert not conv.unmapped and not conv.remarks


def test_vmac_xmit_base_carries_over(tmp_path) -> None:
    conv, vi = load(tmp_path, "  use_vmac\n  vmac_xmit_base")
    assert (vi.use_vmac, vi.vmac_xmit_base, vi.advert_interface) == (True, True, "eth0")
    assert not conv.unmapped


def test_unicast_gets_vmac_xmit_base_as_keepalived_gives_it(tmp_path) -> None:
    conv, vi = load(tmp_path, "  use_vmac\n  unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }")
    assert vi.vmac_xmit_base and not conv.unmapped
    assert remarks(conv)[("keepalived.conf", 5)] == (
        "use_vmac: vmac_xmit_base set: keepalived sets it with unicast peers, as it requires")


def test_another_mac_stays_flagged(tmp_path) -> None:
    conv, vi = load(tmp_path, "  use_vmac vmac51 02:00:00:00:00:01")
    assert not vi.use_vmac
    assert notes(conv) == {("keepalived.conf", 5): "use_vmac: not imported: MAC 02:00:00:00:00:01: directord "
                                                   "uses the VRRP MAC 00:00:5e:00:01:VRID only"}


@pytest.mark.parametrize("line", ["use_vmac", "use_vmac vmac51 00:00:5e:00:02:33", "use_vmac 00:00:5e:00:02"])
def test_ipv6_vmac_carries_over(tmp_path, line: str) -> None:
    conv, vi = load(tmp_path, f"  {line}", vip="2001:db8::10/64")
    assert (vi.use_vmac, vi.family) == (True, 6) and not conv.unmapped and not conv.remarks


def test_the_ipv4_vmac_on_an_ipv6_instance_stays_flagged(tmp_path) -> None:
    conv, vi = load(tmp_path, "  use_vmac vmac51 00:00:5e:00:01:33", vip="2001:db8::10/64")
    assert not vi.use_vmac
    assert notes(conv) == {("keepalived.conf", 5): "use_vmac: not imported: MAC 00:00:5e:00:01:33: directord "
                                                   "uses the VRRP MAC 00:00:5e:00:02:VRID only"}


def test_use_vmac_on_an_address_stays_flagged(tmp_path) -> None:
    conv, vi = load(tmp_path, "", vip="192.0.2.10/24 dev eth1 use_vmac")
    assert not vi.use_vmac
    assert list(notes(conv).values()) == [
        "virtual_ipaddress 192.0.2.10/24 dev eth1 use_vmac: option 'use_vmac' ignored: directord does not "
        "support a VMAC per address (it takes the instance's use_vmac, which moves the addresses without a dev "
        "of their own to vrrp.VRID)"]
