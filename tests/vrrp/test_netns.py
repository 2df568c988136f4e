"""Real directord VRRP processes (`python -m vrrp`) on a bridge of namespaces."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime

from scripts.labkit import DIRECTORD, PYTHON, REPO, VIP, sh
from scripts.labkit import VrrpLab as Lab

# advert_interval 100 ms: Master_Down_Interval = 0.3 s + skew (<= 0.1 s).
MDI = 0.4


def stamp(log: str, needle: str) -> float:
    """The time of the last log line containing `needle`."""
    line = next(x for x in reversed(log.splitlines()) if needle in x)
    return datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()


def prime_client(lab: Lab) -> None:
    """Make the client hold a neighbour entry for the VIP (one ping)."""
    sh(["ping", "-c", "1", "-W", "1", VIP], ns=lab.client)


def test_election_by_priority(lab3: Lab) -> None:
    """Three routers: the highest priority wins and only it holds the VIP."""
    n1, n2, n3 = lab3.nodes
    lab3.start(n1, priority=100)
    lab3.start(n2, priority=200)
    lab3.start(n3, priority=150)
    lab3.wait_master(n2)
    time.sleep(1.0)  # stable: nobody else grabs it
    assert lab3.holders() == [n2]
    # Start-up is staggered, so n1 may briefly have been master: it must end backup.
    last = [x for x in lab3.log(n1).splitlines() if "vrrp transition" in x][-1]
    assert "new=backup" in last


def test_sigkill_failover_and_garp_seen_from_client(lab3: Lab) -> None:
    """Master SIGKILLed: the next priority takes over within Master_Down_Interval,
    and the client's neighbour entry for the VIP moves to the new master's MAC."""
    n1, n2, n3 = lab3.nodes
    lab3.start(n1, priority=200)
    lab3.start(n2, priority=150)
    lab3.start(n3, priority=100)
    lab3.wait_master(n1)
    lab3.wait_backup(n2, n3)
    prime_client(lab3)
    assert lab3.neigh_mac() == lab3.mac(n1)
    lab3.signal(n1, signal.SIGKILL)
    # The killed process leaves its VIP behind (as any crashed daemon would).
    took = lab3.wait_for(lambda: lab3.has_vip(n2), 3.0)
    assert took < MDI + 0.15
    lab3.wait_for(lambda: lab3.neigh_mac() == lab3.mac(n2), 1.0)
    time.sleep(0.5)
    assert not lab3.has_vip(n3)


def test_sigterm_graceful_handoff(lab2: Lab) -> None:
    """SIGTERM sends priority 0: the backup takes over after Skew_Time only."""
    n1, n2 = lab2.nodes
    lab2.start(n1, priority=200)
    lab2.start(n2, priority=100)
    lab2.wait_master(n1)
    lab2.wait_backup(n2)
    time.sleep(0.3)
    lab2.signal(n1, signal.SIGTERM)
    lab2.wait_for(lambda: lab2.holders() == [n2], 2.0)
    assert not lab2.has_vip(n1)  # removed on the way out
    # Skew_Time for priority 100 at 100 ms is 61 ms, far below MDI (0.36 s).
    # Timed from the backup's receipt of priority 0 to its takeover (its own log).
    log2 = lab2.log(n2)
    took = stamp(log2, "new=master") - stamp(log2, "peer resigned")
    assert 0.05 <= took < 0.15, took
    # Make before break: n1 kept the VIP until n2's first advert as master reached it.
    log1 = lab2.log(n1)
    assert "VIPs released" in log1 and 'reason="claimed by 192.0.2.2"' in log1, log1
    assert stamp(log1, "VIPs released") >= stamp(log2, "new=master") - 0.02
    assert "stopped" in log1


# Prints the priority of every VRRP advert from argv[1] seen on eth0, for argv[2] seconds.
SNIFF_PRIORITIES = r"""
import select, socket, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
sock.bind(("eth0", 0))
src, end = socket.inet_aton(sys.argv[1]), time.monotonic() + float(sys.argv[2])
print("ready", flush=True)
while time.monotonic() < end:
    if select.select([sock], [], [], 0.05)[0]:
        frame = sock.recv(256)
        if len(frame) > 40 and frame[23] == 112 and frame[26:30] == src:
            print(frame[14 + (frame[14] & 15) * 4 + 2], flush=True)
"""


def test_sigterm_sends_one_priority_zero_and_then_nothing(lab2: Lab) -> None:
    """The stop signal's thread sends the master's priority 0 at once; the instance
    then stays silent: a second priority 0 would restart the backup's Skew_Time, a
    normal advert would cancel the hand-over. Notify hooks start with no signal
    blocked, although the daemon's threads block SIGTERM and SIGINT."""
    n1, n2 = lab2.nodes
    record = lab2.tmp / "sigblk.txt"
    hook = [PYTHON, "-c", f"import sys; open({str(record)!r}, 'a').write("
            "[x for x in open('/proc/self/status') if x.startswith('SigBlk')][0])"]
    lab2.start(n1, priority=200, notify=hook)
    lab2.start(n2, priority=100)
    lab2.wait_master(n1)
    lab2.wait_backup(n2)
    sniffer = subprocess.Popen(["ip", "netns", "exec", lab2.client, PYTHON, "-c", SNIFF_PRIORITIES,
                                lab2.addr(1), "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert sniffer.stdout is not None and sniffer.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        lab2.signal(n1, signal.SIGTERM)
        lab2.wait_for(lambda: lab2.holders() == [n2], 2.0)
        priorities = [int(line) for line in sniffer.communicate(timeout=10)[0].split()]
    finally:
        sniffer.kill()
        sniffer.wait()
    assert priorities[-1] == 0 and priorities.count(0) == 1, priorities
    assert set(priorities[:-1]) == {200} and len(priorities) >= 3, priorities
    lab2.wait_for(lambda: record.exists() and "master" in lab2.log(n1), 2.0)
    masks = record.read_text().split("\n")[:-1]
    assert masks and all(m.split() == ["SigBlk:", "0000000000000000"] for m in masks), masks


def test_sigterm_without_a_backup_releases_after_one_interval(lab2: Lab) -> None:
    """Nobody claims the VIP: a stopping master keeps it one advert interval and a margin."""
    n1, _ = lab2.nodes
    lab2.start(n1, priority=200)
    lab2.wait_master(n1)
    lab2.signal(n1, signal.SIGTERM)
    lab2.wait_for(lambda: lab2.holders() == [], 2.0)
    log1 = lab2.log(n1)
    assert 'reason="no claim in time"' in log1, log1
    held = stamp(log1, "VIPs released") - stamp(log1, "vrrp stopping")
    assert 0.1 <= held < 0.6, held


def test_preempt(lab2: Lab) -> None:
    """A higher-priority router that starts later takes over (preempt = true)."""
    n1, n2 = lab2.nodes
    lab2.start(n2, priority=100)
    lab2.wait_master(n2)
    lab2.start(n1, priority=200)
    lab2.wait_for(lambda: lab2.holders() == [n1], 5.0)


def test_nopreempt(lab2: Lab) -> None:
    """With preempt = false the later, higher router stays backup."""
    n1, n2 = lab2.nodes
    lab2.start(n2, priority=100)
    lab2.wait_master(n2)
    lab2.start(n1, priority=200, preempt=False)
    time.sleep(2.0)
    assert lab2.holders() == [n2]
    assert "new=backup" in lab2.log(n1)


def test_preempt_delay(lab2: Lab) -> None:
    """preempt_delay postpones the takeover by at least the delay."""
    n1, n2 = lab2.nodes
    lab2.start(n2, priority=100)
    lab2.wait_master(n2)
    t0 = time.monotonic()
    lab2.start(n1, priority=200, preempt_delay="1500ms")
    lab2.wait_for(lambda: lab2.holders() == [n1], 6.0)
    assert time.monotonic() - t0 >= 1.5


def test_split_brain_heals_and_winner_garps(lab2: Lab) -> None:
    """Cut the routers apart: both master. Rejoin: one master, and it sends GARP."""
    n1, n2 = lab2.nodes
    lab2.start(n1, priority=200)
    lab2.start(n2, priority=100)
    lab2.wait_master(n1)
    lab2.wait_backup(n2)
    lab2.isolate(n1, True)
    lab2.isolate(n2, True)
    lab2.wait_for(lambda: sorted(lab2.holders()) == sorted([n1, n2]), 3.0)
    # Point the client at the loser so only a GARP from the winner can fix it.
    prime_client(lab2)
    sh(["ip", "neigh", "replace", VIP, "lladdr", lab2.mac(n2), "dev", "eth0", "nud", "stale"], ns=lab2.client)
    lab2.isolate(n1, False)
    lab2.isolate(n2, False)
    lab2.wait_for(lambda: lab2.holders() == [n1], 3.0)
    lab2.wait_for(lambda: lab2.neigh_mac() == lab2.mac(n1), 2.0)
    time.sleep(0.5)
    assert lab2.holders() == [n1]


def test_bad_packets_counted_not_fatal(lab2: Lab) -> None:
    """Malformed, wrong-TTL, bad-checksum and foreign-VRID packets leave the master alone."""
    n1, n2 = lab2.nodes
    lab2.start(n1, priority=200)
    lab2.wait_master(n1)
    script = (
        "from scapy.all import IP, VRRPv3, Raw, send, conf\n"
        "conf.verb = 0\n"
        "d = '224.0.0.18'\n"
        "good = VRRPv3(vrid=51, priority=254, adv=10, addrlist=['192.0.2.100'])\n"
        "send(IP(dst=d, ttl=64) / good, iface='eth0')\n"  # wrong TTL
        "send(IP(dst=d, ttl=255, proto=112) / Raw(b'\\x31\\x33'), iface='eth0')\n"
        "bad = bytearray(bytes(IP(dst=d, ttl=255) / good)); bad[-1] ^= 1\n"
        "send(IP(bytes(bad)), iface='eth0')\n"
        "send(IP(dst=d, ttl=255) / VRRPv3(vrid=99, priority=254, adv=10,"
        " addrlist=['192.0.2.100']), iface='eth0')\n"
    )
    sh([PYTHON, "-c", script], ns=n2)
    time.sleep(1.0)
    assert lab2.procs[n1].poll() is None
    assert lab2.holders() == [n1]
    lab2.signal(n1, signal.SIGTERM)
    log = lab2.log(n1)
    for reason in ("bad_ttl", "truncated", "bad_checksum", "wrong_vrid"):
        assert f"reason={reason}" in log, reason


VIP6 = "fd00::100"


def test_ipv6_failover_and_unsolicited_na(lab2: Lab) -> None:
    """VRRPv3 over IPv6 (ff02::12, link-local sources): failover on SIGKILL, and the
    client's neighbour entry follows the unsolicited NA of the new master."""
    lab2.add_ipv6()
    n1, n2 = lab2.nodes
    lab2.start(n1, priority=200, virtual_ips=[f"{VIP6}/64"])
    lab2.start(n2, priority=100, virtual_ips=[f"{VIP6}/64"])
    lab2.wait_master(n1, timeout=10.0, vip=VIP6)
    lab2.wait_backup(n2)
    sh(["ping", "-6", "-c", "1", "-W", "2", VIP6], ns=lab2.client)
    assert lab2.neigh_mac(VIP6) == lab2.mac(n1)
    lab2.signal(n1, signal.SIGKILL)
    lab2.wait_for(lambda: lab2.has_vip(n2, VIP6), MDI + 1.0)
    lab2.wait_for(lambda: lab2.neigh_mac(VIP6) == lab2.mac(n2), 2.0)


def test_link_down_is_fault_and_notify_runs(lab2: Lab) -> None:
    """Carrier loss on the instance's interface means Fault (VIPs dropped); the
    backup takes over; the link's return brings the router back and it preempts.
    The notify argv receives instance, state and priority on every transition."""
    n1, n2 = lab2.nodes
    record = lab2.tmp / "notify.txt"
    hook = [PYTHON, "-c",
            f"import sys; open({str(record)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')"]
    lab2.start(n1, priority=200, notify=hook)
    lab2.start(n2, priority=100)
    lab2.wait_master(n1)
    lab2.wait_backup(n2)
    sh(["ip", "link", "set", lab2.port(n1), "down"], ns=lab2.sw)
    lab2.wait_for(lambda: "new=fault" in lab2.log(n1) and not lab2.has_vip(n1), 2.0)
    lab2.wait_for(lambda: lab2.has_vip(n2), MDI + 1.0)
    sh(["ip", "link", "set", lab2.port(n1), "up"], ns=lab2.sw)
    lab2.wait_for(lambda: lab2.holders() == [n1], 5.0)
    lab2.wait_for(lambda: record.exists() and record.read_text().count("master") >= 2, 3.0)
    lines = record.read_text().splitlines()
    assert lines[:3] == ["VI_1 backup 200", "VI_1 master 200", "VI_1 fault 200"], lines
    assert "VI_1 master 200" in lines[3:]


def test_runtime_hooks_for_the_director(lab2: Lab) -> None:
    """VrrpRuntime in-process: snapshot, tracked virtual server quorum, failover()
    with a held backup, GARP refresh, on_transition, and clean stop."""
    import json
    import subprocess

    n1, n2 = lab2.nodes
    lab2.start(n2, priority=100)
    lab2.wait_for(lambda: "new=backup" in lab2.log(n2), 5.0)
    res = subprocess.run(
        ["ip", "netns", "exec", n1, PYTHON, "-m", "tests.vrrp.runtime_driver"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    snap = out["snapshot"]["instances"]["VI_1"]
    assert out["became_master"] and out["first_garps"] and snap["state"] == "master"
    assert snap["master_address"] == "192.0.2.1" and snap["adverts_sent"] >= 1
    assert snap["garps_sent"] >= 2 and out["garp_refresh_frames"] >= 6
    assert out["quorum_lost_backup"] and out["quorum_lost_priority"] == 50
    assert out["quorum_back_master"]
    assert out["failover_accepted"] and not out["failover_not_master"]
    assert out["after_failover_state"] == "backup"
    assert out["master_address"] == "192.0.2.2"
    assert lab2.holders() == [n2]
    states = [e[1] for e in out["events"]]
    assert states[:3] == ["backup", "master", "backup"] and states[-1] == "init"


def _two_instances(priority: int, track: str | None = None) -> dict[str, object]:
    second: dict[str, object] = {
        "name": "VI_2", "interface": "eth0", "vrid": 52, "advert_interval": "100ms",
        "priority": priority,
        "virtual_ips": ["192.0.2.101/24"], "sync_group": "G",
    }
    if track:
        second["track_interfaces"] = [{"name": track, "weight": 0}]
    return {"priority": priority, "sync_group": "G", "instances": [second]}


def test_sync_group_fails_over_together(lab2: Lab) -> None:
    """A tracked interface failing in one member (weight 0) puts the whole sync
    group in Fault, so the peer takes every VIP; recovery brings them all back."""
    n1, n2 = lab2.nodes
    sh(["ip", "link", "add", "t0", "type", "veth", "peer", "name", "t1"], ns=n1)
    sh(["ip", "link", "set", "t0", "up"], ns=n1)
    sh(["ip", "link", "set", "t1", "up"], ns=n1)
    lab2.start(n1, **_two_instances(200, track="t0"))
    lab2.start(n2, **_two_instances(100))
    both = ("192.0.2.100", "192.0.2.101")
    lab2.wait_for(lambda: all(lab2.holders(v) == [n1] for v in both), 5.0)
    lab2.wait_backup(n2)
    time.sleep(1.0)
    assert all(lab2.holders(v) == [n1] for v in both)  # stable, no flapping
    sh(["ip", "link", "set", "t1", "down"], ns=n1)  # t0 loses its carrier
    lab2.wait_for(lambda: all(lab2.holders(v) == [n2] for v in both), 2.0)
    assert lab2.log(n1).count("new=fault") == 2
    sh(["ip", "link", "set", "t1", "up"], ns=n1)
    lab2.wait_for(lambda: all(lab2.holders(v) == [n1] for v in both), 5.0)


def test_runtime_reconfigure(lab2: Lab) -> None:
    """reconfigure(): a master swaps its VIPs in place (no transition), a lower
    priority hands over, removal resigns, re-adding starts the instance again."""
    import json
    import subprocess

    n1, n2 = lab2.nodes
    lab2.start(n2, priority=100, virtual_ips=["192.0.2.101/24"])
    lab2.wait_backup(n2)
    res = subprocess.run(
        ["ip", "netns", "exec", n1, PYTHON, "-m", "tests.vrrp.runtime_driver", "reload"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["became_master"]
    assert out["swap_state"] == "master" and out["swap_transitions"] == 2
    assert out["swap_vips"] == ["192.0.2.1/24", "192.0.2.101/24"]
    assert out["lower_backup"]
    assert out["removed"] == "absent"
    assert out["readded_master"]
    assert out["final_vips"] == ["192.0.2.1/24", "192.0.2.100/24"]


def test_runtime_reconfigure_that_cannot_open_an_instance_changes_nothing(lab2: Lab) -> None:
    """A reload whose new instance cannot be opened (at each step: interface, address,
    socket, packet sender) leaves the running master, its VIPs, its priority and its
    sockets as they were; re-applying the old config is then a no-op."""
    import json
    import subprocess

    n1, n2 = lab2.nodes
    lab2.start(n2, priority=100, virtual_ips=["192.0.2.100/24"])
    lab2.wait_backup(n2)
    res = subprocess.run(["ip", "netns", "exec", n1, PYTHON, "-m", "tests.vrrp.runtime_driver", "atomic"],
                         capture_output=True, text=True, timeout=90, cwd=REPO)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["became_master"]
    expected = {"missing_interface": "no interface 'eth9'", "no_address": "dum0 has no usable address",
                "socket_refused": "sockets refused", "sender_refused": "sender refused"}
    for step, error in expected.items():
        assert error in (out[step]["error"] or ""), (step, out[step])
        assert out[step]["unchanged"], (step, out[step])
        assert out[step]["priority"] == 200, (step, out[step])
    assert out["reapplied_unchanged"]


def test_directord_run_with_only_vrrp_instances(lab2: Lab) -> None:
    """`directord run` with only [[vrrp_instance]] tables works on a kernel without
    IPVS: election, then a SIGTERM handoff with priority 0 and a clean exit."""
    n1, n2 = lab2.nodes
    procs = {}
    for node, prio in ((n1, 200), (n2, 100)):
        procs[node] = lab2.start_directord(node, priority=prio)
    lab2.wait_master(n1, timeout=10.0)
    lab2.wait_backup(n2)
    procs[n1].send_signal(signal.SIGTERM)
    assert procs[n1].wait(timeout=10) == 0
    lab2.wait_for(lambda: lab2.holders() == [n2], 2.0)
    assert "peer resigned" in lab2.log(n2)
    procs[n2].send_signal(signal.SIGTERM)
    assert procs[n2].wait(timeout=10) == 0
    assert lab2.holders() == []


def forge(lab: Lab, node: str, *adverts: str, count: int = 1) -> None:
    """Send scapy-built VRRPv3 adverts (TTL 255, valid checksums) from `node`."""
    script = ("from scapy.all import IP, VRRPv3, send, conf\nconf.verb = 0\n"
              f"pkt = IP(dst='224.0.0.18', ttl=255) / VRRPv3({', '.join(adverts)})\n"
              f"send(pkt, iface='eth0', count={count}, inter=0)\n")
    sh([PYTHON, "-c", script], ns=node)


def test_a_forged_advert_with_other_addresses_is_dropped(lab3: Lab) -> None:
    """Issue 17's attack (priority 255, interval 40.95 s) without our address list:
    dropped and counted, the master keeps the VIP."""
    n1, n2, n3 = lab3.nodes
    lab3.start(n1, priority=200)
    lab3.start(n2, priority=100)
    lab3.wait_master(n1)
    lab3.wait_backup(n2)
    forge(lab3, n3, "vrid=51, priority=255, adv=4095, addrlist=['198.51.100.9']")
    time.sleep(1.0)
    assert lab3.holders() == [n1]
    for node in (n1, n2):
        assert "reason=address_mismatch" in lab3.log(node), node


def test_with_adopt_master_interval_off_a_forged_interval_is_dropped(lab3: Lab) -> None:
    """The same advert copying our address list gets past the address check; with
    adopt_master_interval = false its 40.95 s interval is refused too."""
    n1, n2, n3 = lab3.nodes
    lab3.start(n1, priority=200, adopt_master_interval=False)
    lab3.start(n2, priority=100, adopt_master_interval=False)
    lab3.wait_master(n1)
    lab3.wait_backup(n2)
    forge(lab3, n3, f"vrid=51, priority=255, adv=4095, addrlist=['{VIP}']")
    time.sleep(1.0)
    assert lab3.holders() == [n1]
    for node in (n1, n2):
        assert "reason=interval_mismatch" in lab3.log(node), node


def test_a_priority_0_flood_is_not_reflected_one_for_one(lab2: Lab) -> None:
    """Each priority-0 advert asks the master for an immediate advert: a flood of them
    gets at most one answer per half interval, and the master stays master."""
    import json

    n1, n2 = lab2.nodes
    lab2.start_directord(n1, priority=200)
    lab2.wait_master(n1)
    sock = lab2.tmp / f"{n1}.sock"

    def view() -> dict:
        out = subprocess.run([DIRECTORD, "status", "--json", "--socket", str(sock)], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["vrrp"]["instances"]["VI_1"]

    before = view()
    started = time.monotonic()
    forge(lab2, n2, f"vrid=51, priority=0, adv=10, addrlist=['{VIP}']", count=300)
    elapsed = time.monotonic() - started
    after = view()
    sent = after["adverts_sent"] - before["adverts_sent"]
    # the regular adverts of the flood's duration (100 ms apart) plus at most two answers each
    assert sent <= 3 * (elapsed / 0.1 + 2) + 5, (sent, elapsed)
    assert after["answers_suppressed"] >= 300 - sent, after
    assert after["state"] == "master" and lab2.holders() == [n1]


def test_track_own_interface_false_ignores_the_link_going_down(lab2: Lab) -> None:
    """keepalived's dont_track_primary: the instance's own link going down is no fault; by
    default it is."""
    n1, n2 = lab2.nodes
    lab2.start(n1, priority=200, track_own_interface=False)
    lab2.start(n2, priority=100)
    lab2.wait_master(n1)
    lab2.wait_backup(n2)
    for node in (n1, n2):
        sh(["ip", "link", "set", "eth0", "down"], ns=node)
    lab2.wait_for(lambda: "new=fault" in lab2.log(n2), 3.0)
    time.sleep(0.5)
    assert "new=fault" not in lab2.log(n1), lab2.log(n1)
