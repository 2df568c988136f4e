"""directord and Debian's keepalived (VRRP only, `keepalived -P`) with VRRPv2 authentication, PASS
and AH: one master and failover both ways with the same password, the bytes on the wire in
keepalived's format, and with different passwords each drops (and directord counts) the other's."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from scripts.labkit import DIRECTORD, VrrpLab, keepalived_conf
from vrrp import ah
from vrrp.codec import inet_checksum, v2_auth_data

KINDS = ["pass", "ah"]
PASSWORD = "longpassword"  # both truncate it to "longpass"
DD = {"version": 2, "advert_interval": "1s"}
PROTO = {"pass": 112, "ah": 51}
# what keepalived logs when it drops an advert for its authentication
KA_REFUSALS = ("invalid passwd", "IPSEC-AH : invalid", "already processed", "auth, expecting", "AH header")


def ka_conf(lab: VrrpLab, kind: str, password: str) -> str:
    conf = keepalived_conf(lab.addr(2), priority=100, version=2, interval="1", peers=[])
    block = f"  authentication {{\n    auth_type {kind.upper()}\n    auth_pass {password}\n  }}\n"
    return conf.rstrip().removesuffix("}") + block + "}\n"


class Capture:
    """tcpdump in the client's namespace: every advert on the segment, for the scapy checks."""

    def __init__(self, lab: VrrpLab, path: Path) -> None:
        self.path = path
        self.proc = lab.net.start(["tcpdump", "-i", "eth0", "-U", "-n", "-w", str(path), "ip proto 112 or ip proto 51"],
                                  ns=lab.client, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline().decode()  # "listening on eth0, ...": capturing from now on
        assert "listening" in line, line

    def packets(self) -> list:
        """The captured IPv4 datagrams (scapy), once tcpdump has stopped."""
        import scapy.layers.ipsec
        import scapy.layers.vrrp  # noqa: F401  (binds IP protocol 112 to VRRP for the dissection)
        from scapy.layers.inet import IP
        from scapy.utils import rdpcap

        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        return [frame[IP] for frame in rdpcap(str(self.path)) if IP in frame]


@pytest.mark.parametrize("kind", KINDS)
def test_one_master_and_failover_both_ways(lab2: VrrpLab, kind: str) -> None:
    """directord (200) over keepalived (100); directord stops and keepalived takes over at its
    priority 0; directord comes back, fresh (for AH: from sequence number 0), and preempts.
    keepalived never refuses one of our adverts, and the adverts are keepalived's format."""
    dd, ka = lab2.nodes
    capture = Capture(lab2, lab2.tmp / "adverts.pcap")
    lab2.start_keepalived(ka, ka_conf(lab2, kind, PASSWORD))
    lab2.start(dd, priority=200, auth_type=kind, auth_pass=PASSWORD, **DD)
    lab2.wait_for(lambda: lab2.holders() == [dd], 6.0)
    time.sleep(2.2)  # two more adverts, each accepted by keepalived: it stays backup
    assert lab2.holders() == [dd], lab2.all_logs()

    lab2.signal(dd, signal.SIGTERM)  # priority 0: keepalived takes over after its Skew_Time
    lab2.wait_for(lambda: lab2.holders() == [ka], 3.0)

    lab2.start(dd, priority=200, auth_type=kind, auth_pass=PASSWORD, **DD)
    lab2.wait_backup(dd)  # it hears keepalived's adverts and, being higher, preempts
    lab2.wait_for(lambda: lab2.holders() == [dd], 6.0)
    time.sleep(1.2)
    assert lab2.holders() == [dd], lab2.all_logs()
    assert "Entering MASTER STATE" in lab2.log(ka) and "Entering BACKUP STATE" in lab2.log(ka).split(
        "Entering MASTER STATE")[-1], lab2.log(ka)
    refused = [line for line in lab2.log(ka).splitlines() if any(word in line for word in KA_REFUSALS)]
    # one replay refusal may be a race: keepalived's own advert leaving just as our first, same-numbered, arrives
    assert not refused or (len(refused) == 1 and "already processed" in refused[0]), refused
    assert "reason=bad_auth" not in lab2.log(dd)

    ours, theirs = ([p for p in capture.packets() if p.src == lab2.addr(i)] for i in (1, 2))
    assert len(ours) >= 4 and len(theirs) >= 2, (len(ours), len(theirs))
    (check_ah if kind == "ah" else check_pass)(ours, theirs)


def check_pass(ours: list, theirs: list) -> None:
    """Our VRRP message is keepalived's, byte for byte, but for the priority (and so the checksum)."""
    from scapy.layers.vrrp import VRRP

    for packet in ours + theirs:
        assert (packet.proto, packet.ttl) == (112, 255)
        assert (packet[VRRP].authtype, packet[VRRP].auth1.to_bytes(4, "big") + packet[VRRP].auth2.to_bytes(4, "big")
                ) == (1, b"longpass")
    mine, keepalived = bytes(ours[0].payload), bytearray(bytes(theirs[0].payload))
    keepalived[2], keepalived[6:8] = mine[2], b"\x00\x00"
    keepalived[6:8] = inet_checksum(bytes(keepalived)).to_bytes(2, "big")
    assert mine == bytes(keepalived)


def check_ah(ours: list, theirs: list) -> None:
    """IP header, AH header and VRRP message in keepalived's layout; each side's ICV is what our
    ICV function computes; the IP id and the sequence number count up by one, and directord,
    restarted, carries on above the numbers keepalived sent."""
    from scapy.layers.ipsec import AH
    from scapy.layers.vrrp import VRRP

    key = v2_auth_data(PASSWORD)
    for packet in ours + theirs:
        assert (packet.tos, packet.flags, packet.frag, packet.ttl, packet.proto) == (0xC0, 0, 0, 255, 51)
        header, spi = packet[AH], int(ah.IPv4Address(packet.src))
        assert (header.nh, header.payloadlen, header.reserved, header.spi) == (112, 4, 0, spi)
        assert VRRP(bytes(header.payload)).authtype == 2
        raw = bytes(packet)
        assert ah.icv(raw, 20, key) == bytes(header.icv), packet.src
    for side in (ours, theirs):
        sequences = [p[AH].seq for p in side]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    first_run = [p for p in ours if p[AH].seq < theirs[0][AH].seq]
    second_run = ours[len(first_run):]
    assert first_run[0][AH].seq == 1 and [p.id for p in first_run] == list(range(1, len(first_run) + 1))
    assert second_run and second_run[0][AH].seq >= theirs[-1][AH].seq  # learnt from keepalived's adverts


def status(lab: VrrpLab, node: str) -> dict:
    out = subprocess.run([DIRECTORD, "status", "--json", "--socket", str(lab.tmp / f"{node}.sock")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["vrrp"]["instances"]["VI_1"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_password_is_dropped_and_counted(lab2: VrrpLab, kind: str) -> None:
    """Different passwords: each side drops the other's adverts, so both become master;
    directord counts its drops as bad_auth (status and metrics read the same counter)."""
    dd, ka = lab2.nodes
    lab2.start_keepalived(ka, ka_conf(lab2, kind, "theirs"))
    lab2.start_directord(dd, priority=200, auth_type=kind, auth_pass="ours", **DD)
    lab2.wait_for(lambda: lab2.holders() == [dd, ka], 8.0)
    lab2.wait_for(lambda: status(lab2, dd)["errors"].get("bad_auth", 0) >= 1, 3.0, step=0.2)
    view = status(lab2, dd)
    assert view["state"] == "master" and view["adverts_received"] == 0, view
    # keepalived, master too, drops each of ours; while ours keep coming it sends few adverts of
    # its own (2.2.7 sent one, seen with tcpdump), and directord counts each one it gets.
    said = "received an invalid passwd" if kind == "pass" else "IPSEC-AH : invalid IPSEC HMAC-MD5"
    lab2.wait_for(lambda: lab2.log(ka).count(said) >= 2, 3.0)


# Sends argv[1] (hex datagrams, comma-separated) from this namespace to argv[2], headers included.
SEND_RAW = r"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for packet in sys.argv[1].split(","):
    sock.sendto(bytes.fromhex(packet), (sys.argv[2], 0))
"""


def test_malformed_and_forged_ah_datagrams_are_counted_never_a_crash(lab2: VrrpLab) -> None:
    """Truncated or malformed AH headers are counted by the socket's reader, a wrong ICV and a
    replayed sequence number by the instance; the master stays master, the daemon runs on."""
    from vrrp.codec import AUTH_AH, Advert, encode

    dd, other = lab2.nodes
    lab2.start_directord(dd, priority=200, auth_type="ah", auth_pass=PASSWORD, **DD)
    lab2.wait_master(dd, timeout=6.0)
    src, dst = ah.IPv4Address(lab2.addr(2)), ah.IPv4Address(lab2.addr(1))
    message = encode(Advert(2, 51, 100, 100, (ah.IPv4Address("192.0.2.100"),)), src, dst, auth_type=AUTH_AH)
    # above the master's own numbers, which its one counter holds too
    good = ah.build(message, src, dst, v2_auth_data(PASSWORD), sequence=1000, ident=1)
    forged = ah.build(message, src, dst, v2_auth_data("guessed"), sequence=2000, ident=2)

    def header(total: int) -> bytes:
        return good[:2] + total.to_bytes(2, "big") + good[4:]

    packets = [header(30)[:30],  # room for no AH header
               good[:20] + bytes([6]) + good[21:],  # AH around TCP
               good[:21] + bytes([3]) + good[22:],  # another ICV length
               forged, good, good]  # a wrong key; one advert, then its replay
    subprocess.run(["ip", "netns", "exec", other, "python3", "-c", SEND_RAW, ",".join(p.hex() for p in packets),
                    str(dst)], check=True, timeout=30)
    time.sleep(0.3)
    snapshot = json.loads(subprocess.run([DIRECTORD, "status", "--json", "--socket", str(lab2.tmp / f"{dd}.sock")],
                                         capture_output=True, text=True, timeout=30, check=True).stdout)["vrrp"]
    view = snapshot["instances"]["VI_1"]
    assert snapshot["unmatched_errors"] == {"truncated": 1, "bad_ip_header": 2}, snapshot
    assert view["errors"] == {"bad_auth": 1, "replayed": 1} and view["adverts_received"] == 1, view
    assert view["state"] == "master" and lab2.holders() == [dd]
    assert lab2.procs[dd].poll() is None
