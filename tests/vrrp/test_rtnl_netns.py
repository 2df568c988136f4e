"""The address edge against a real kernel in a fresh network namespace, cross-checked with
iproute2."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

KERNEL_SCRIPT = textwrap.dedent("""
    import ipaddress, json, subprocess
    from vrrp.addresses import AddressManager, local_addresses

    def ip(*args):
        return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout

    ip("link", "add", "d0", "type", "veth", "peer", "name", "d1")
    ip("link", "set", "d1", "up")
    ip("link", "set", "d0", "up")
    ip("addr", "add", "198.51.100.1/24", "dev", "d0")
    m = AddressManager()
    link = m.link("d0")
    v4, v6 = ipaddress.ip_interface("198.51.100.100/24"), ipaddress.ip_interface("fd00::100/64")
    out = {
        "link": [link.index, link.name, link.up, link.mac.hex()],
        "missing": m.link("nope0"),
        "primary": str(m.primary_address(link.index, 4, set())),
        "add": [m.add(link.index, v4), m.add(link.index, v4), m.add(link.index, v6)],
        "after_add": json.loads(ip("-j", "addr", "show", "dev", "d0")),
        "primary_with_vip": str(m.primary_address(link.index, 4, {v4.ip})),
        "local": sorted(local_addresses()),
        "remove": [m.remove(link.index, v4), m.remove(link.index, v4), m.remove(link.index, v6)],
        "after_remove": json.loads(ip("-j", "addr", "show", "dev", "d0")),
        "ip_link": json.loads(ip("-j", "link", "show", "d0"))[0],
    }
    print(json.dumps(out))
""")


def addrs_of(ip_json: list[dict]) -> dict[str, dict]:
    return {a["local"]: a for a in ip_json[0]["addr_info"]}


def test_address_manager_against_the_kernel() -> None:
    res = subprocess.run(["unshare", "--net", sys.executable, "-c", KERNEL_SCRIPT],
                         capture_output=True, text=True, timeout=30, check=True)
    out = json.loads(res.stdout)
    # a veth reports IFF_RUNNING once both ends are up
    ip_link = out["ip_link"]
    assert out["link"] == [ip_link["ifindex"], "d0", True, ip_link["address"].replace(":", "")]
    assert out["missing"] is None
    assert out["primary"] == out["primary_with_vip"] == "198.51.100.1"
    assert out["add"] == [True, False, True]
    added = addrs_of(out["after_add"])
    assert added["198.51.100.100"]["prefixlen"] == 24
    assert added["fd00::100"]["prefixlen"] == 64 and not added["fd00::100"].get("tentative")
    assert {"198.51.100.1", "198.51.100.100", "fd00::100"} <= set(out["local"])
    assert out["remove"] == [True, False, True]
    assert set(addrs_of(out["after_remove"])) == {"198.51.100.1"} | {
        a for a in addrs_of(out["after_remove"]) if a.startswith("fe80:")}
