"""dns checks against a real unbound on 127.0.0.1 (throwaway config), and the codec's rules."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
from pathlib import Path

import pytest

from director.config.model import CheckConfig
from healthcheck import dns
from healthcheck import dns_message as dm
from healthcheck.result import Target
from tests.healthcheck.conftest import free_port, need, run, stop, wait_tcp

# a TXT set longer than 512 bytes: over UDP (no EDNS) it comes truncated, so TCP follows
BIG_TXT = [f'big.test. 300 IN TXT "{chr(97 + i) * 200}"' for i in range(4)]
RECORDS = ['www.test. 300 IN A 192.0.2.7', 'www.test. 300 IN AAAA 2001:db8::7',
           'test. 300 IN SOA ns.test. admin.test. 7 3600 600 86400 300', 'test. 300 IN NS ns.test.',
           'mail.test. 300 IN MX 10 mx.test.', *BIG_TXT]


@pytest.fixture(scope="module")
def unbound(tmp_path_factory) -> int:
    binary = need("unbound")
    d: Path = tmp_path_factory.mktemp("unbound")
    port = free_port()
    data = "\n".join(f"    local-data: '{r}'" for r in RECORDS)
    (d / "unbound.conf").write_text(f"""server:
    interface: 127.0.0.1
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    local-zone: "test." static
{data}
    local-zone: "refused.test." refuse
remote-control:
    control-enable: no
""")
    proc = subprocess.Popen([binary, "-d", "-c", str(d / "unbound.conf")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_tcp(port, proc, "unbound")
        yield port
    finally:
        stop(proc)


def check(**kw) -> CheckConfig:
    return CheckConfig(type="dns", timeout=1.0, **kw)


def probe(port: int, **kw):
    return run(dns.probe(Target("127.0.0.1", port), check(**kw)))


def test_a_record_and_its_answer_regex(unbound):
    r = probe(unbound, query_name="www.test", query_type="A", expect=r"IN A 192\.0\.2\.7$")
    assert r.ok, r.reason
    assert r.reason.startswith(r"answers matched") and "1 answer" in r.reason
    r = probe(unbound, query_name="www.test", query_type="A", expect=r"192\.0\.2\.8")
    assert not r.ok and r.reason.startswith("answers did not match")


def test_default_query_soa_of_the_zone(unbound):
    r = probe(unbound, query_name="test.", query_type="SOA", expect=r"ns\.test\. admin\.test\. 7 ")
    assert r.ok, r.reason
    r = probe(unbound, query_name="mail.test", query_type="MX", expect=r"MX 10 mx\.test\.")
    assert r.ok, r.reason
    r = probe(unbound, query_name="www.test", query_type="AAAA", expect=r"2001:db8::7")
    assert r.ok, r.reason


def test_nxdomain_fails_unless_expected(unbound):
    r = probe(unbound, query_name="nothere.test", query_type="A")
    assert not r.ok and r.reason == "rcode NXDOMAIN, expected NOERROR"
    r = probe(unbound, query_name="nothere.test", query_type="A", expect_rcode="NXDOMAIN")
    assert r.ok and r.reason.startswith("rcode NXDOMAIN")
    r = probe(unbound, query_name="x.refused.test", query_type="A")
    assert not r.ok and r.reason == "rcode REFUSED, expected NOERROR"


def test_truncated_udp_reply_is_asked_again_over_tcp(unbound):
    r = probe(unbound, query_name="big.test", query_type="TXT", expect='"d{200}"')
    assert r.ok, r.reason
    assert "4 answers over TCP (truncated over UDP)" in r.reason


def test_tcp_by_choice(unbound):
    r = probe(unbound, query_name="www.test", query_type="A", transport="tcp")
    assert r.ok and r.reason == "rcode NOERROR, 1 answer over TCP"


def test_closed_port_is_refused_and_silence_a_timeout():
    closed = free_port(socket.SOCK_DGRAM)
    r = probe(closed, query_name="www.test")
    assert not r.ok and r.reason == "connection refused (ICMP port unreachable)"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind(("127.0.0.1", 0))
        r = run(dns.probe(Target("127.0.0.1", mute.getsockname()[1]),
                          dataclasses.replace(check(), timeout=0.2)))
    assert not r.ok and r.reason == "timeout after 0.2s waiting for DNS reply"


def test_a_stray_reply_is_ignored_and_a_wrong_question_fails():
    """A datagram with another id is not our reply; one with ours but another question is."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))

        async def go():
            import asyncio
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(dns.probe(Target("127.0.0.1", server.getsockname()[1]),
                                                   check(query_name="www.test", query_type="A")))
            server.setblocking(False)
            data, addr = await loop.sock_recvfrom(server, 512)
            other = bytes([data[0] ^ 1, data[1]]) + b"\x81\x80" + data[4:]
            server.sendto(other, addr)  # another id: ignored
            wrong = data[:2] + b"\x81\x80" + data[4:12] + dm.question("xxx.test", "A", "IN")
            server.sendto(wrong, addr)
            return await task
        r = run(go())
    assert not r.ok and r.reason == "bad DNS reply: reply does not echo the question asked"


# --- the codec ----------------------------------------------------------------------


def reply_for(query: dm.Query, flags: int, answers: bytes, ancount: int) -> bytes:
    return dm.HEADER.pack(query.ident, flags, 1, ancount, 0, 0) + query.question + answers


def test_compressed_answers_render_like_a_zone_file():
    q = dm.build_query(7, dm.question("www.Test", "A", "IN"))
    rr = b"\xc0\x0c" + bytes.fromhex("0001 0001 0000012c 0004") + bytes([192, 0, 2, 1])
    cname = b"\xc0\x0c" + bytes.fromhex("0005 0001 0000012c 0002") + b"\xc0\x10"  # -> "test."
    reply = dm.parse_reply(reply_for(q, 0x8180, rr + cname, 2), q, True)
    assert reply.rcode == 0 and reply.answers == 2
    assert reply.text == "www.Test. 300 IN A 192.0.2.1\nwww.Test. 300 IN CNAME Test."


def test_name_in_any_case_matches_the_question():
    q = dm.build_query(7, dm.question("www.test", "A", "IN"))
    echoed = dm.HEADER.pack(7, 0x8180, 1, 0, 0, 0) + dm.question("WWW.TEST", "A", "IN")
    assert dm.parse_reply(echoed, q, False).answers == 0
    other_type = dm.HEADER.pack(7, 0x8180, 1, 0, 0, 0) + dm.question("www.test", "MX", "IN")
    with pytest.raises(dm.DnsParseError, match="does not echo"):
        dm.parse_reply(other_type, q, False)


@pytest.mark.parametrize(("answers", "ancount", "why"), [
    (b"\xc0\x1e" + bytes(10), 1, "does not point backwards"),  # a pointer to itself
    (b"\xc1\x00" + bytes(10), 1, "does not point backwards"),  # out of range
    (b"\xc0", 1, "claims 1 records"),
    (b"\xc0\x0c" + bytes.fromhex("0001 0001 0000012c 0004") + b"\x01", 1, "runs past the end"),
    (bytes(11) * 2, 50, "claims 50 records but has room for 2"),
    (b"\x40" + bytes(10), 1, "label type 0x40"),
])
def test_hostile_answers_are_reasons(answers, ancount, why):
    q = dm.build_query(9, dm.question("a.test", "A", "IN"))
    with pytest.raises(dm.DnsParseError, match=why):
        dm.parse_reply(reply_for(q, 0x8180, answers, ancount), q, True)


def test_pointer_chain_is_bounded():
    """40 pointers, each to the one before it: backwards every time, but too many jumps."""
    q = dm.build_query(9, dm.question("a.test", "A", "IN"))
    head = reply_for(q, 0x8180, b"", 2)
    start = len(head) + 1 + 10  # the first record's data: a root, then the chain
    chain = bytearray(b"\x00")
    for i in range(40):
        at = start + 1 + 2 * (i - 1) if i else start
        chain += bytes([0xC0 | (at >> 8), at & 0xFF])
    first = b"\x00" + bytes.fromhex("0063 0001 00000000") + len(chain).to_bytes(2, "big") + chain
    last = start + len(chain) - 2
    second = bytes([0xC0 | (last >> 8), last & 0xFF]) + bytes.fromhex("0001 0001 00000000 0000")
    with pytest.raises(dm.DnsParseError, match="more than 32 compression pointers"):
        dm.parse_reply(head + first + second, q, True)


def test_directord_probe_runs_a_dns_check_from_the_config(unbound, tmp_path):
    """The whole path: TOML keys, the loader, `directord probe`, the real unbound."""
    import json
    import sys
    from pathlib import Path as _Path

    conf = tmp_path / "directord.toml"
    conf.write_text(f"""
[[virtual_server]]
name = "ns"
address = "192.0.2.53"
port = {unbound}
protocol = "udp"
  [virtual_server.check]
  type = "dns"
  query_name = "www.test"
  query_type = "A"
  expect = 'IN A 192\\.0\\.2\\.7$'
  [[virtual_server.real_server]]
  address = "127.0.0.1"
  [[virtual_server.real_server]]
  address = "127.0.0.2"
""")
    directord = _Path(sys.executable).with_name("directord")
    out = subprocess.run([str(directord), "probe", "-c", str(conf), "--json"], capture_output=True, text=True,
                         timeout=30)
    results = {r["real_server"]: r for r in json.loads(out.stdout)["results"]}
    assert out.returncode == 1  # one real server down
    assert results[f"127.0.0.1:{unbound}"]["up"] is True
    assert results[f"127.0.0.1:{unbound}"]["reason"].startswith("answers matched")
    assert results[f"127.0.0.2:{unbound}"]["up"] is False  # nothing listens there: refused
    assert results[f"127.0.0.2:{unbound}"]["reason"] == "connection refused (ICMP port unreachable)"
