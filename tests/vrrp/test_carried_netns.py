"""What an instance carries with mastership, against a real kernel: the Carrier edge in a fresh
network namespace, cross-checked with iproute2 (`ip -j addr`, `ip -j route`, `ip -j rule`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from scripts.labkit import DIRECTORD, PYTHON, VIP, VrrpLab, sh

KERNEL_SCRIPT = textwrap.dedent("""
    import json, subprocess
    from director.config.load import parse_config
    from vrrp.addresses import AddressManager
    from vrrp.carried import Carrier, items_of

    def ip(*args):
        return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout

    def look():
        return {"addr": json.loads(ip("-j", "addr", "show")),
                "route4": json.loads(ip("-j", "-4", "route", "show", "table", "all")),
                "route6": json.loads(ip("-j", "-6", "route", "show", "table", "all")),
                "rule4": json.loads(ip("-j", "-4", "rule", "show")),
                "rule6": json.loads(ip("-j", "-6", "rule", "show"))}

    for a, b in (("d0", "p0"), ("d1", "p1")):
        ip("link", "add", a, "type", "veth", "peer", "name", b)
        for dev in (a, b):
            ip("link", "set", dev, "up")
    ip("addr", "add", "198.51.100.1/24", "dev", "d0")
    ip("addr", "add", "203.0.113.1/24", "dev", "d1")
    ip("-6", "addr", "add", "fd00:1::1/64", "dev", "d1", "nodad")
    cfg = parse_config({"vrrp_instance": [{
        "name": "VI_1", "interface": "d0", "vrid": 1,
        "virtual_ips": ["198.51.100.10/24",
                        {"address": "10.0.0.1/24", "dev": "d1", "label": "d1:vip", "scope": "link",
                         "broadcast": "+", "noprefixroute": True}],
        "excluded_ips": ["fd00::10/64", {"address": "192.0.2.7/32", "label": "d0:x"}],
        "virtual_routes": [
            {"to": "10.8.0.0/16", "via": "203.0.113.254", "src": "10.0.0.1", "metric": 7, "table": 100},
            {"to": "10.9.0.0/16", "type": "blackhole", "table": 100},
            {"to": "10.7.0.0/24", "dev": "d1"},
            {"to": "fd00:9::/48", "via": "fd00:1::fe", "table": 100}],
        "virtual_rules": [{"from": "10.0.0.0/24", "table": 100, "priority": 1000},
                          {"fwmark": 7, "fwmask": 255, "iif": "d0", "table": 100, "priority": 1001},
                          {"to": "fd00:9::/48", "table": 100, "priority": 1002},
                          {"from": "10.0.5.0/24", "table": 100}],
    }]}).vrrp_instances[0]
    m = AddressManager()
    ifindex = m.link("d0").index
    carrier = Carrier(m)
    # someone else's route and rule with our attributes but another protocol: never ours to remove
    ip("route", "add", "10.7.0.0/24", "dev", "d1", "table", "200", "proto", "static")
    ip("route", "add", "10.8.0.0/16", "via", "203.0.113.253", "metric", "7", "table", "100", "proto", "static")
    ip("rule", "add", "from", "10.0.5.0/24", "table", "100", "proto", "static")
    out = {"added": [str(r.item) + ": " + r.error for r in carrier.change(items_of(cfg), True, "d0", ifindex)]}
    out["again"] = [str(r.item) + ": " + r.error for r in carrier.change(items_of(cfg), True, "d0", ifindex)]
    out["after_add"] = look()
    out["removed"] = [str(r.item) + ": " + r.error for r in carrier.change(items_of(cfg), False, "d0", ifindex)]
    out["after_remove"] = look()
    print(json.dumps(out))
""")


def run_in_fresh_netns() -> dict:
    res = subprocess.run(["unshare", "--net", sys.executable, "-c", KERNEL_SCRIPT],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def addresses(state: dict) -> dict[str, dict]:
    """local address -> its info plus the device it is on."""
    return {a["local"]: a | {"dev": link["ifname"]} for link in state["addr"] for a in link["addr_info"]}


def ours(routes: list[dict]) -> list[dict]:
    return [r for r in routes if r.get("protocol") == "keepalived"]


def test_addresses_routes_and_rules_go_on_as_configured_and_come_off_exactly() -> None:
    out = run_in_fresh_netns()
    assert out["added"] == out["again"] == []  # a second add (a reload, a restart) changes nothing
    added = addresses(out["after_add"])
    vip = added["10.0.0.1"]
    assert (vip["dev"], vip["prefixlen"], vip["label"], vip["scope"], vip["broadcast"]) == (
        "d1", 24, "d1:vip", "link", "10.0.0.255")
    assert vip.get("noprefixroute") is True
    assert (added["198.51.100.10"]["dev"], added["198.51.100.10"]["label"]) == ("d0", "d0")
    assert (added["192.0.2.7"]["dev"], added["192.0.2.7"]["label"], added["192.0.2.7"]["prefixlen"]) == (
        "d0", "d0:x", 32)
    assert added["fd00::10"]["dev"] == "d0" and not added["fd00::10"].get("tentative")  # the other family
    # noprefixroute: no 10.0.0.0/24 route came with the address
    assert not any(r.get("dst") == "10.0.0.0/24" for r in out["after_add"]["route4"])

    state = out["after_add"]
    routes = {(r["dst"], r.get("table", "main")): r for r in ours(state["route4"] + state["route6"])}
    assert set(routes) == {("10.8.0.0/16", "100"), ("10.9.0.0/16", "100"), ("10.7.0.0/24", "main"),
                           ("fd00:9::/48", "100")}
    via = routes[("10.8.0.0/16", "100")]
    # prepended, as keepalived does, before someone else's route to the same destination and metric
    in_100 = [r for r in state["route4"] if r.get("dst") == "10.8.0.0/16"]
    assert [r["gateway"] for r in in_100] == ["203.0.113.254", "203.0.113.253"]
    assert (via["gateway"], via["dev"], via["prefsrc"], via["metric"]) == ("203.0.113.254", "d1", "10.0.0.1", 7)
    assert routes[("10.9.0.0/16", "100")]["type"] == "blackhole"
    assert routes[("10.7.0.0/24", "main")]["scope"] == "link" and routes[("10.7.0.0/24", "main")]["dev"] == "d1"
    assert routes[("fd00:9::/48", "100")]["gateway"] == "fd00:1::fe"

    rules = {r.get("priority"): r for r in state["rule4"] + state["rule6"] if r.get("protocol") == "keepalived"}
    assert (rules[1000]["src"], rules[1000]["srclen"], rules[1000]["table"]) == ("10.0.0.0", 24, "100")
    assert (rules[1001]["fwmark"], rules[1001]["fwmask"], rules[1001]["iif"]) == ("0x7", "0xff", "d0")
    assert rules[1002]["dst"] == "fd00:9::" and rules[1002]["dstlen"] == 48
    unnumbered = [r for r in rules.values() if r.get("src") == "10.0.5.0"]
    assert len(unnumbered) == 1  # added twice, there once

    assert out["removed"] == []
    left = addresses(out["after_remove"])
    assert not {"10.0.0.1", "198.51.100.10", "192.0.2.7", "fd00::10"} & set(left)
    assert {"198.51.100.1", "203.0.113.1", "fd00:1::1"} <= set(left)
    after = out["after_remove"]
    assert ours(after["route4"] + after["route6"]) == []
    assert [r for r in after["rule4"] + after["rule6"] if r.get("protocol") == "keepalived"] == []
    # the look-alikes of another protocol are still there
    assert any(r.get("dst") == "10.7.0.0/24" and r.get("table") == "200" for r in after["route4"])
    theirs = [r for r in after["route4"] if r.get("dst") == "10.8.0.0/16"]
    assert [(r["gateway"], r["protocol"]) for r in theirs] == [("203.0.113.253", "static")]
    assert any(r.get("src") == "10.0.5.0" and r.get("protocol") == "static" for r in after["rule4"])


# --- a running director: on master the items appear, on backup and at stop they go ----------------

# both nodes carry the same (the peers compare virtual_ips in the adverts)
CARRIED: dict = {
    "virtual_ips": [f"{VIP}/24", {"address": "10.50.0.1/24", "dev": "eth1", "label": "eth1:vip", "scope": "link",
                                  "broadcast": "+", "noprefixroute": True}],
    "excluded_ips": ["fd00:50::1/64", {"address": "192.0.2.101/32", "label": "eth0:ex"}],
    "virtual_routes": [{"to": "10.60.0.0/16", "via": "192.0.2.254", "src": VIP, "table": 100},
                       {"to": "10.61.0.0/16", "type": "blackhole", "table": 100},
                       {"to": "fd00:61::/48", "dev": "eth1"}],
    "virtual_rules": [{"from": "10.50.0.0/24", "table": 100, "priority": 1000},
                      {"fwmark": 7, "table": 100, "priority": 1001, "family": "ipv6"}],
}
ADDRESSES = {"10.50.0.1", "fd00:50::1", "192.0.2.101", VIP}


def with_second_link(lab: VrrpLab) -> None:
    """eth1 in every node: a veth whose peer stays in the node, both up."""
    for node in lab.nodes:
        sh(["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"], ns=node)
        for dev in ("eth1", "eth1p"):
            sh(["ip", "link", "set", dev, "up"], ns=node)


def seen(ns: str) -> dict:
    """What a node has of the carried items: addresses (with their info), our routes and rules."""
    def ip(*args: str) -> list[dict]:
        return json.loads(sh(["ip", "-j", *args], ns=ns) or "[]")

    addrs = {a["local"]: a | {"dev": link["ifname"]} for link in ip("addr", "show") for a in link["addr_info"]}
    routes = [r for r in ip("-4", "route", "show", "table", "all") + ip("-6", "route", "show", "table", "all")
              if r.get("protocol") == "keepalived"]
    rules = [r for r in ip("-4", "rule", "show") + ip("-6", "rule", "show") if r.get("protocol") == "keepalived"]
    return {"addresses": {a: info for a, info in addrs.items() if a in ADDRESSES}, "routes": routes, "rules": rules}


def carries_all(ns: str) -> bool:
    now = seen(ns)
    return set(now["addresses"]) == ADDRESSES and len(now["routes"]) == 3 and len(now["rules"]) == 2


def carries_none(ns: str) -> bool:
    now = seen(ns)
    return not now["addresses"] and not now["routes"] and not now["rules"]


def one_advert(lab: VrrpLab) -> list[str]:
    """The address list of one VRRP advert seen by the client (scapy dissects it)."""
    script = ("from scapy.all import sniff, conf\nfrom scapy.layers.vrrp import VRRPv3\nconf.verb = 0\n"
              "got = sniff(iface='eth0', filter='ip proto 112', count=1, timeout=3)\n"
              "print(' '.join(got[0][VRRPv3].addrlist) if got else 'none')\n")
    return sh([PYTHON, "-c", script], ns=lab.client).split()


def test_a_running_director_carries_options_excluded_routes_and_rules_with_mastership(lab2: VrrpLab) -> None:
    n1, n2 = lab2.nodes
    with_second_link(lab2)
    lab2.start_directord(n1, priority=100, **CARRIED)
    lab2.wait_for(lambda: carries_all(n1), 10.0)
    now = seen(n1)
    vip = now["addresses"]["10.50.0.1"]
    assert (vip["dev"], vip["prefixlen"], vip["label"], vip["scope"], vip["broadcast"], vip.get("noprefixroute")) \
        == ("eth1", 24, "eth1:vip", "link", "10.50.0.255", True)
    assert (now["addresses"]["192.0.2.101"]["dev"], now["addresses"]["192.0.2.101"]["label"]) == ("eth0", "eth0:ex")
    assert now["addresses"]["fd00:50::1"]["dev"] == "eth0"  # the other family rides along
    assert {(r["dst"], r.get("table", "main")) for r in now["routes"]} == {
        ("10.60.0.0/16", "100"), ("10.61.0.0/16", "100"), ("fd00:61::/48", "main")}
    assert {r["priority"] for r in now["rules"]} == {1000, 1001}
    # the adverts list virtual_ips only, not the excluded addresses
    assert one_advert(lab2) == [VIP, "10.50.0.1"]

    # a higher-priority peer starts: n1 becomes backup and takes everything off
    lab2.start_directord(n2, priority=200, **CARRIED)
    lab2.wait_for(lambda: carries_all(n2) and carries_none(n1), 10.0)
    assert lab2.holders() == [n2]

    # the peer stops: n1 is master again; the stopped one leaves nothing behind
    lab2.signal(n2, signal.SIGTERM)
    lab2.wait_for(lambda: carries_all(n1), 5.0)
    assert carries_none(n2)

    # and n1 itself stops
    lab2.signal(n1, signal.SIGTERM)
    assert carries_none(n1)


def capture(ns: str, iface: str, expression: str) -> subprocess.Popen:
    """tcpdump of the first packet matching `expression` on `iface` of `ns`."""
    return subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-l", "-n", "-e", "-c", "1", "-i", iface,
                             expression],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def test_addresses_elsewhere_are_announced_from_their_own_device(lab2: VrrpLab) -> None:
    """As keepalived does: a gratuitous ARP on eth1 for the address on eth1, and an unsolicited
    neighbour advertisement for the IPv6 excluded address of this IPv4 instance."""
    n1, _ = lab2.nodes
    with_second_link(lab2)
    lab2.wait_for(lambda: "tentative" not in sh(["ip", "-6", "addr", "show", "dev", "eth0"], ns=n1), 5.0)
    sniffers = {"arp on eth1": capture(n1, "eth1p", "arp and host 10.50.0.1"),
                "na on eth0": capture(lab2.client, "eth0", "icmp6 and ip6[40] == 136")}
    time.sleep(0.5)  # tcpdump is listening
    try:
        lab2.start_directord(n1, priority=100, **CARRIED)
        lab2.wait_for(lambda: carries_all(n1), 10.0)
        seen = {what: proc.communicate(timeout=5)[0] for what, proc in sniffers.items()}
    finally:
        for proc in sniffers.values():
            proc.kill()
    mac1 = sh(["ip", "-j", "link", "show", "eth1"], ns=n1)
    assert "10.50.0.1" in seen["arp on eth1"] and json.loads(mac1)[0]["address"] in seen["arp on eth1"].lower()
    assert "fd00:50::1" in seen["na on eth0"], seen


def test_a_reload_while_master_swaps_just_the_changed_items(lab2: VrrpLab) -> None:
    n1, _ = lab2.nodes
    with_second_link(lab2)
    lab2.start_directord(n1, priority=100, **CARRIED)
    lab2.wait_for(lambda: carries_all(n1), 10.0)
    changed = CARRIED | {"virtual_routes": [*CARRIED["virtual_routes"][:2], {"to": "10.70.0.0/16", "dev": "eth1"}],
                         "excluded_ips": ["fd00:50::1/64"],
                         "virtual_rules": CARRIED["virtual_rules"][:1]}
    lab2.write_config(n1, daemon=True, priority=100, **changed)
    res = subprocess.run([DIRECTORD, "reload", "--socket", str(lab2.tmp / f"{n1}.sock")], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr

    def swapped() -> bool:
        now = seen(n1)
        return ({r["dst"] for r in now["routes"]} == {"10.60.0.0/16", "10.61.0.0/16", "10.70.0.0/16"}
                and [r["priority"] for r in now["rules"]] == [1000] and "192.0.2.101" not in now["addresses"])
    lab2.wait_for(swapped, 5.0)
    assert set(seen(n1)["addresses"]) == ADDRESSES - {"192.0.2.101"}  # the rest stayed
    assert lab2.holders() == [n1]


def test_a_killed_vrrp_child_leaves_nothing_the_daemon_does_not_take_off(lab2: VrrpLab) -> None:
    n1, _ = lab2.nodes
    with_second_link(lab2)
    daemon = lab2.start_directord(n1, priority=100, **CARRIED)
    lab2.wait_for(lambda: carries_all(n1), 10.0)
    [child] = Path(f"/proc/{daemon.pid}/task/{daemon.pid}/children").read_text().split()
    os.kill(int(child), signal.SIGKILL)
    assert daemon.wait(timeout=15) == 2
    assert carries_none(n1)
    log = lab2.log(n1)
    assert "removed a route the VRRP process left behind" in log and "removed a rule" in log
