"""use_vmac on real links: the VIP on a macvlan with the VRRP MAC, a client whose ARP entry
for the VIP stays the VMAC across a failover, adverts from the VMAC (or the base with
vmac_xmit_base), the base's ARP sysctls while it exists, and the macvlan gone afterwards
(unless it was adopted); and the same virtual router with Debian's keepalived (use_vmac)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.labkit import DIRECTORD, PYTHON, VIP, keepalived_conf, sh
from scripts.labkit import VrrpLab as Lab

VMAC = "00:00:5e:00:01:33"  # VRID 51
# Prints the source MAC of every VRRP (IP protocol 112) frame on eth0, for argv[1] seconds.
SNIFF_VRRP = r"""
import select, socket, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
sock.bind(("eth0", 0))
end = time.monotonic() + float(sys.argv[1])
print("ready", flush=True)
while time.monotonic() < end:
    if select.select([sock], [], [], 0.05)[0]:
        frame = sock.recv(256)
        if len(frame) > 23 and frame[23] == 112:
            print(frame[6:12].hex(":"), flush=True)
"""


@contextmanager
def sniff_advert_macs(lab: Lab, seconds: float) -> Iterator[list[str]]:
    """The source MACs of the adverts the client sees while the block runs (at most `seconds`)."""
    sniffer = subprocess.Popen(["ip", "netns", "exec", lab.client, PYTHON, "-c", SNIFF_VRRP, str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    found: list[str] = []
    try:
        assert sniffer.stdout is not None and sniffer.stdout.readline().strip() == "ready"
        yield found
        sniffer.send_signal(signal.SIGTERM)
        found += sniffer.communicate(timeout=seconds + 5)[0].split()
    finally:
        sniffer.kill()
        sniffer.wait()


def vmac_vip(lab: Lab, ns: str, dev: str = "vrrp.51") -> bool:
    """The VIP is on the VMAC (and not on eth0)."""
    out = sh(["ip", "-4", "addr", "show"], ns=ns)
    here = re.findall(r"inet (\S+)/\d+ .* (\S+)$", out, re.M)
    return (VIP, dev) in here and (VIP, "eth0") not in here


def vmac_holders(lab: Lab) -> list[str]:
    return [n for n in lab.nodes if vmac_vip(lab, n)]


def link(ns: str, dev: str = "vrrp.51") -> str:
    """`ip -d link show DEV`, or "" when there is none."""
    done = subprocess.run(["ip", "netns", "exec", ns, "ip", "-d", "link", "show", dev], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def sysctl(ns: str, key: str) -> str:
    return sh(["sysctl", "-n", f"net.ipv4.conf.eth0.{key}"], ns=ns).strip()


def ping(lab: Lab) -> None:
    """One echo answered within 2 s. Not the first one sent: each node's VMAC reports its membership
    of 224.0.0.18 (IGMP, from the VMAC), so the bridge may point the VMAC at the backup until the
    master's next advert (see docs/configuration.md, use_vmac)."""
    sh(["ping", "-c", "1", "-w", "2", VIP], ns=lab.client)


def test_vmac_holds_the_vip_and_the_client_entry_survives_failover(lab2: Lab) -> None:
    n1, n2 = lab2.nodes
    for n in (n1, n2):
        sh(["sysctl", "-qw", "net.ipv4.conf.eth0.arp_ignore=0", "net.ipv4.conf.eth0.arp_announce=0"], ns=n)
    base_macs = {lab2.mac(n1), lab2.mac(n2)}
    with sniff_advert_macs(lab2, 8) as advert_macs:
        lab2.start(n1, priority=200, use_vmac=True)
        lab2.start(n2, priority=100, use_vmac=True)
        lab2.wait_for(lambda: vmac_holders(lab2) == [n1], 5.0)
        lab2.wait_backup(n2)
        details = link(n1)
        assert f"link/ether {VMAC}" in details and "macvlan mode private" in details, details
        assert "addrgenmode none" in details and "vrrp.51@eth0" in details, details
        assert "alias directord vmac" in details, details  # ours, even to a later run
        assert "inet6" not in sh(["ip", "addr", "show", "vrrp.51"], ns=n1)  # never a frame of its own
        assert f"link/ether {VMAC}" in link(n2)  # the backup has it too, without the VIP
        for n in (n1, n2):
            assert (sysctl(n, "arp_ignore"), sysctl(n, "arp_announce")) == ("1", "2")
        ping(lab2)
        time.sleep(0.3)  # the master's own ARP for the client must not repoint the entry at eth0's MAC
        ping(lab2)
        assert lab2.neigh_mac() == VMAC, sh(["ip", "neigh"], ns=lab2.client)
        time.sleep(0.5)

    assert advert_macs and set(advert_macs) == {VMAC}, advert_macs  # never a base MAC

    # n1 stops: n2 takes over; the client reaches it at the same MAC, its entry untouched
    lab2.signal(n1, signal.SIGTERM)
    lab2.wait_for(lambda: vmac_holders(lab2) == [n2], 3.0)
    assert link(n1) == "" and (sysctl(n1, "arp_ignore"), sysctl(n1, "arp_announce")) == ("0", "0")
    assert lab2.neigh_mac() == VMAC
    received = int(sh(["cat", "/sys/class/net/vrrp.51/statistics/rx_packets"], ns=n2))
    ping(lab2)
    assert int(sh(["cat", "/sys/class/net/vrrp.51/statistics/rx_packets"], ns=n2)) > received
    assert lab2.neigh_mac() == VMAC, sh(["ip", "neigh"], ns=lab2.client)
    assert base_macs.isdisjoint({lab2.neigh_mac() or ""})

    lab2.signal(n2, signal.SIGTERM)
    assert link(n2) == "" and sysctl(n2, "arp_ignore") == "0"


def test_vmac_xmit_base_sends_adverts_from_the_base_mac(lab2: Lab) -> None:
    n1, n2 = lab2.nodes
    with sniff_advert_macs(lab2, 6) as advert_macs:
        lab2.start(n1, priority=200, use_vmac=True, vmac_xmit_base=True)
        lab2.start(n2, priority=100, use_vmac=True, vmac_xmit_base=True)
        lab2.wait_for(lambda: vmac_holders(lab2) == [n1], 5.0)
        lab2.wait_backup(n2)
        time.sleep(0.5)
        assert vmac_holders(lab2) == [n1]  # n2 hears the adverts on its base
        ping(lab2)
        assert lab2.neigh_mac() == VMAC
    # n2 may advertise too before it hears n1 (they start together): from its base MAC as well
    assert lab2.mac(n1) in advert_macs and set(advert_macs) <= {lab2.mac(n1), lab2.mac(n2)}, advert_macs
    lab2.signal(n1, signal.SIGTERM)
    lab2.wait_for(lambda: vmac_holders(lab2) == [n2], 3.0)
    ping(lab2)
    assert lab2.neigh_mac() == VMAC


def test_an_adopted_macvlan_is_left_in_place(lab2: Lab) -> None:
    n1, _n2 = lab2.nodes
    sh(["ip", "link", "add", "link", "eth0", "name", "vmac51", "address", VMAC, "type", "macvlan",
        "mode", "private"], ns=n1)
    lab2.start(n1, priority=200, use_vmac=True, vmac_interface="vmac51")
    lab2.wait_for(lambda: vmac_vip(lab2, n1, "vmac51"), 5.0)
    lab2.signal(n1, signal.SIGTERM)
    assert f"link/ether {VMAC}" in link(n1, "vmac51")  # not ours to delete
    assert VIP not in sh(["ip", "addr", "show", "vmac51"], ns=n1)
    assert sysctl(n1, "arp_ignore") == "0"


def test_a_vmac_left_by_a_killed_run_is_taken_back_and_removed(lab2: Lab) -> None:
    n1, _n2 = lab2.nodes
    lab2.start(n1, priority=200, use_vmac=True)
    lab2.wait_for(lambda: vmac_vip(lab2, n1), 5.0)
    lab2.signal(n1, signal.SIGKILL)
    assert "alias directord vmac" in link(n1)  # the leftover
    lab2.start(n1, priority=200, use_vmac=True)
    lab2.wait_for(lambda: "vmac ready" in lab2.log(n1) and vmac_vip(lab2, n1), 5.0)
    assert "created=false" in lab2.log(n1)
    lab2.signal(n1, signal.SIGTERM)
    assert link(n1) == ""


def test_a_reload_turning_use_vmac_off_moves_the_vip_and_removes_the_vmac(lab2: Lab) -> None:
    """`directord run`: the reload replaces the instance, which deletes the macvlan and gives the
    base its ARP sysctls back; the VIP moves to eth0."""
    n1, _n2 = lab2.nodes
    lab2.start_directord(n1, priority=200, use_vmac=True)
    lab2.wait_for(lambda: vmac_vip(lab2, n1), 10.0)
    assert sysctl(n1, "arp_ignore") == "1"
    lab2.write_config(n1, daemon=True, priority=200)
    res = subprocess.run([DIRECTORD, "reload", "--socket", str(lab2.tmp / f"{n1}.sock")], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    lab2.wait_for(lambda: link(n1) == "" and lab2.has_vip(n1), 5.0)
    assert (sysctl(n1, "arp_ignore"), sysctl(n1, "arp_announce")) == ("0", "0")
    # and back: the VMAC is made again and takes the VIP from eth0
    lab2.write_config(n1, daemon=True, priority=200, use_vmac=True)
    res = subprocess.run([DIRECTORD, "reload", "--socket", str(lab2.tmp / f"{n1}.sock")], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    lab2.wait_for(lambda: vmac_vip(lab2, n1), 5.0)


def test_a_killed_vrrp_child_leaves_no_vmac(lab2: Lab) -> None:
    n1, _n2 = lab2.nodes
    daemon = lab2.start_directord(n1, priority=200, use_vmac=True)
    lab2.wait_for(lambda: vmac_vip(lab2, n1), 10.0)
    [child] = Path(f"/proc/{daemon.pid}/task/{daemon.pid}/children").read_text().split()
    os.kill(int(child), signal.SIGKILL)
    assert daemon.wait(timeout=15) == 2
    assert link(n1) == ""
    assert "removed the VMAC the VRRP process left behind" in lab2.log(n1)


def test_a_set_all_rp_filter_is_handled_as_keepalived_handles_it(lab2: Lab) -> None:
    """all.rp_filter 1 would make the backup's VMAC drop the master's adverts (two masters); it is
    moved onto each device while the VMAC exists, and comes back afterwards."""
    n1, n2 = lab2.nodes
    for n in (n1, n2):
        sh(["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.eth0.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0"], ns=n)
    lab2.start(n1, priority=200, use_vmac=True)
    lab2.start(n2, priority=100, use_vmac=True)
    lab2.wait_for(lambda: vmac_holders(lab2) == [n1], 5.0)
    lab2.wait_backup(n2)
    time.sleep(1.0)
    assert vmac_holders(lab2) == [n1], lab2.all_logs()
    rp = {key: sh(["sysctl", "-n", f"net.ipv4.conf.{key}.rp_filter"], ns=n2).strip()
          for key in ("all", "default", "eth0", "vrrp/51")}
    assert rp == {"all": "0", "default": "1", "eth0": "1", "vrrp/51": "0"}, rp
    for n in (n1, n2):
        lab2.signal(n, signal.SIGTERM)
        rp = {key: sh(["sysctl", "-n", f"net.ipv4.conf.{key}.rp_filter"], ns=n).strip()
              for key in ("all", "default", "eth0")}
        assert rp == {"all": "1", "default": "0", "eth0": "0"}, rp


def test_a_foreign_link_of_the_vmac_name_is_refused(lab2: Lab) -> None:
    n1, _n2 = lab2.nodes
    sh(["ip", "link", "add", "vrrp.51", "type", "bridge"], ns=n1)
    proc = lab2.start(n1, priority=200, use_vmac=True)
    assert proc.wait(timeout=10) != 0
    assert "vrrp.51 exists but is not a macvlan" in lab2.log(n1)
    assert "bridge" in link(n1)  # still there, untouched


def test_interop_with_keepalived_use_vmac_both_ways(lab2: Lab) -> None:
    """directord and keepalived, both with use_vmac, elect one master and fail over both ways."""
    dd, ka = lab2.nodes
    lab2.start_keepalived(ka, keepalived_conf(lab2.addr(2), priority=100, version=3, interval="0.1", peers=[],
                                              use_vmac=True))
    lab2.start(dd, priority=200, use_vmac=True)
    lab2.wait_for(lambda: vmac_holders(lab2) == [dd], 8.0)
    lab2.wait_for(lambda: f"link/ether {VMAC}" in link(ka), 5.0)  # keepalived made its vrrp.51
    time.sleep(0.5)
    assert vmac_holders(lab2) == [dd], lab2.all_logs()
    ping(lab2)
    assert lab2.neigh_mac() == VMAC

    # directord goes: keepalived takes over at the same MAC. (The client's entry may then move to
    # keepalived's eth0 MAC: keepalived leaves arp_announce alone, so its ARP requests from eth0
    # name the VIP; directord sets arp_announce 2 for that.)
    lab2.signal(dd, signal.SIGTERM)
    lab2.wait_for(lambda: vmac_holders(lab2) == [ka], 3.0)
    ping(lab2)

    # directord comes back higher: it preempts keepalived (which hears our VMAC adverts)
    lab2.start(dd, priority=200, use_vmac=True)
    lab2.wait_for(lambda: vmac_holders(lab2) == [dd], 5.0)
    time.sleep(0.5)
    assert vmac_holders(lab2) == [dd], lab2.all_logs()

    # keepalived outranks us when we come back at 50: we follow its VMAC adverts
    lab2.signal(dd, signal.SIGTERM)
    lab2.wait_for(lambda: vmac_holders(lab2) == [ka], 3.0)
    lab2.start(dd, priority=50, use_vmac=True)
    lab2.wait_backup(dd)
    time.sleep(1.0)
    assert vmac_holders(lab2) == [ka], lab2.all_logs()
    ping(lab2)


VMAC6 = "00:00:5e:00:02:33"  # VRID 51, IPv6 (RFC 5798 7.3)
VIP6 = "fd00::100"


def vmac6_holders(lab: Lab) -> list[str]:
    """The nodes with the IPv6 VIP on their VMAC (and not on eth0)."""
    found = []
    for n in lab.nodes:
        on_vmac = f"inet6 {VIP6}/" in sh(["ip", "-6", "addr", "show", "dev", "vrrp.51"], ns=n) if link(n) else False
        on_eth0 = f"inet6 {VIP6}/" in sh(["ip", "-6", "addr", "show", "dev", "eth0"], ns=n)
        if on_vmac and not on_eth0:
            found.append(n)
    return found


def link_local(ns: str, dev: str) -> list[str]:
    return re.findall(r"inet6 (fe80::\S+)/64", sh(["ip", "-6", "addr", "show", "dev", dev], ns=ns))


def ping6(lab: Lab) -> None:
    sh(["ping", "-6", "-c", "1", "-w", "2", VIP6], ns=lab.client)


def test_ipv6_vmac_carries_the_vip_with_00_00_5e_00_02_vrid_across_failover(lab2: Lab) -> None:
    """An IPv6 instance with use_vmac: the VIP on a macvlan with 00:00:5e:00:02:VRID that holds
    the base's link-local address (the adverts' source), the client's neighbour entry the VMAC
    before and after the failover, the macvlan gone afterwards and the IPv4 sysctls untouched."""
    lab2.add_ipv6()
    n1, n2 = lab2.nodes
    for n in (n1, n2):
        sh(["sysctl", "-qw", "net.ipv4.conf.eth0.arp_ignore=0", "net.ipv4.conf.eth0.arp_announce=0"], ns=n)
    lab2.start(n1, priority=200, use_vmac=True, virtual_ips=[f"{VIP6}/64"])
    lab2.start(n2, priority=100, use_vmac=True, virtual_ips=[f"{VIP6}/64"])
    lab2.wait_for(lambda: vmac6_holders(lab2) == [n1], 10.0)
    lab2.wait_backup(n2)
    time.sleep(0.5)
    assert vmac6_holders(lab2) == [n1], lab2.all_logs()  # n2 hears n1's adverts on its VMAC
    details = link(n1)
    assert f"link/ether {VMAC6}" in details and "macvlan mode private" in details, details
    assert "addrgenmode none" in details, details
    for n in (n1, n2):
        assert link_local(n, "vrrp.51") == link_local(n, "eth0") != [], sh(["ip", "-6", "addr"], ns=n)
        assert (sysctl(n, "arp_ignore"), sysctl(n, "arp_announce")) == ("0", "0")  # IPv4 only
    ping6(lab2)
    assert lab2.neigh_mac(VIP6) == VMAC6, sh(["ip", "-6", "neigh"], ns=lab2.client)

    lab2.signal(n1, signal.SIGTERM)
    lab2.wait_for(lambda: vmac6_holders(lab2) == [n2], 3.0)
    assert link(n1) == ""
    ping6(lab2)
    assert lab2.neigh_mac(VIP6) == VMAC6, sh(["ip", "-6", "neigh"], ns=lab2.client)
    lab2.signal(n2, signal.SIGTERM)
    assert link(n2) == ""


def test_ipv6_vmac_interop_with_keepalived(lab2: Lab) -> None:
    """directord and keepalived, IPv6 instances with use_vmac: one master, both ways."""
    lab2.add_ipv6()
    dd, ka = lab2.nodes
    lab2.start_keepalived(ka, keepalived_conf(lab2.addr(2), priority=100, version=3, interval="0.1", peers=[],
                                              vip=f"{VIP6}/64", use_vmac=True))
    lab2.start(dd, priority=200, use_vmac=True, virtual_ips=[f"{VIP6}/64"])
    lab2.wait_for(lambda: vmac6_holders(lab2) == [dd], 10.0)
    lab2.wait_for(lambda: f"link/ether {VMAC6}" in link(ka), 5.0)  # keepalived made its IPv6 vrrp.51
    time.sleep(1.0)
    assert vmac6_holders(lab2) == [dd], lab2.all_logs()
    ping6(lab2)
    lab2.signal(dd, signal.SIGTERM)
    lab2.wait_for(lambda: vmac6_holders(lab2) == [ka], 3.0)
    ping6(lab2)
    # back at 50: directord follows keepalived's adverts from its VMAC
    lab2.start(dd, priority=50, use_vmac=True, virtual_ips=[f"{VIP6}/64"])
    lab2.wait_backup(dd)
    time.sleep(1.0)
    assert vmac6_holders(lab2) == [ka], lab2.all_logs()
