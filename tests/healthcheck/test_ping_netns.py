"""ping checks in namespaces: one target answers, one drops echo requests (nft), one rejects
them with an ICMP error (nft), for IPv4 and IPv6, all probed at once over the shared socket."""

from __future__ import annotations

import json
import subprocess

import pytest

from healthcheck import icmp_message as im
from scripts.labkit import PYTHON, Lab, in_netns, require_root, sh

# probes every address given, concurrently (one shared socket per family), prints the results
RUNNER = """
import asyncio, json, sys
from director.config.model import CheckConfig
from healthcheck import ping
from healthcheck.result import Target

async def main():
    check = CheckConfig(type="ping", timeout=float(sys.argv[1]))
    addrs = sys.argv[2:]
    results = await asyncio.gather(*(ping.probe(Target(a, 0), check) for a in addrs))
    raw = sorted({s.raw for s in ping._sockets.values()})
    print(json.dumps({a: [r.ok, r.reason] for a, r in zip(addrs, results)} | {"raw": raw}))

asyncio.run(main())
"""

NFT = "table inet f {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n{rules} }}\n}}\n"
DROP = "  icmp type echo-request drop\n  icmpv6 type echo-request drop\n"
REJECT = ("  icmp type echo-request reject with icmp type admin-prohibited\n"
          "  icmpv6 type echo-request reject with icmpv6 type admin-prohibited\n")


@pytest.fixture(scope="module")
def lab():
    require_root()
    with Lab("hping") as lab:
        client = lab.netns("c")
        for n, kind in ((1, "up"), (2, "drop"), (3, "rej")):
            ns = lab.netns(kind)
            lab.veth(ns, "eth0", f"10.9.{n}.2/24", bridge_ns=client, peer=f"c{n}",
                     peer_address=f"10.9.{n}.1/24")
            lab.address(ns, "eth0", f"fd00:9:{n}::2/64")
            lab.address(client, f"c{n}", f"fd00:9:{n}::1/64")
            rules = {"drop": DROP, "rej": REJECT}.get(kind)
            if rules:
                subprocess.run(in_netns(["nft", "-f", "-"], ns), input=NFT.format(rules=rules), text=True,
                               check=True)
        yield lab, client


def probe_all(client: str, timeout: float, *addrs: str) -> dict:
    out = sh([PYTHON, "-c", RUNNER, str(timeout), *addrs], ns=client)
    return json.loads(out)


def test_ping_up_dropped_and_rejected_v4_and_v6_together(lab):
    _, client = lab
    got = probe_all(client, 1.0, "10.9.1.2", "fd00:9:1::2", "10.9.2.2", "fd00:9:2::2",
                    "10.9.3.2", "fd00:9:3::2", "10.9.1.2")
    assert got["raw"] == [True]  # ping_group_range is "1 0" here: nobody may use ping sockets
    assert got["10.9.1.2"] == [True, "echo reply"]
    assert got["fd00:9:1::2"] == [True, "echo reply"]
    assert got["10.9.2.2"] == [False, "timeout after 1.0s waiting for echo reply"]
    assert got["fd00:9:2::2"] == [False, "timeout after 1.0s waiting for echo reply"]
    assert got["10.9.3.2"] == [False, "administratively prohibited (ICMP from 10.9.3.2)"]
    assert got["fd00:9:3::2"] == [False, "administratively prohibited (ICMP from fd00:9:3::2)"]


def test_ping_over_unprivileged_ping_sockets(lab):
    """Where net.ipv4.ping_group_range admits the group, no raw socket is needed. A ping
    socket does not hear ICMP errors (no IP_RECVERR here): a rejected echo times out."""
    _, client = lab
    Lab.sysctl("net.ipv4.ping_group_range", "0 2147483647", ns=client)
    try:
        got = probe_all(client, 0.5, "10.9.1.2", "fd00:9:1::2", "10.9.2.2", "10.9.3.2")
    finally:
        Lab.sysctl("net.ipv4.ping_group_range", "1 0", ns=client)
    assert got["raw"] == [False]
    assert got["10.9.1.2"] == [True, "echo reply"] and got["fd00:9:1::2"] == [True, "echo reply"]
    assert got["10.9.2.2"] == got["10.9.3.2"] == [False, "timeout after 0.5s waiting for echo reply"]


def test_ping_many_checks_of_one_target_share_the_socket(lab):
    _, client = lab
    addrs = ["10.9.1.2", "fd00:9:1::2"]
    script = RUNNER.replace("addrs = sys.argv[2:]", "addrs = sys.argv[2:] * 200").replace(
        'print(json.dumps({a: [r.ok, r.reason] for a, r in zip(addrs, results)} | {"raw": raw}))',
        "print(json.dumps([sum(r.ok for r in results), len(results)]))")
    out = sh([PYTHON, "-c", script, "2.0", *addrs], ns=client)
    assert json.loads(out) == [400, 400]


def test_icmp_codec_checksums_and_strays():
    token = bytes(range(8))
    packet = im.echo(False, 0x1234, 7, token, im.echo_sum(0x1234, token))
    total = sum(int.from_bytes(packet[i:i + 2], "big") for i in range(0, len(packet), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF  # the checksum makes the one's-complement sum all ones
    reply = bytes([0, 0]) + packet[2:]
    assert im.parse_v4(reply, False, None, token) == im.Heard(7)
    assert im.parse_v4(reply, False, 0x9999, token) is None  # another pinger's id
    assert im.parse_v4(reply[:8] + b"x" * 8, False, None, token) is None  # another payload
    for junk in (b"", b"\x45", bytes(19), b"\x45" + bytes(30), b"\x03\x01" + bytes(10)):
        assert im.parse_v4(junk, True, 1, token) is None
        assert im.parse_v6(junk, True, 1, token) is None
