"""DNS replies (healthcheck.dns_message, the dns probe's judge), SMTP replies
(healthcheck.smtp_reply) and ICMP packets (healthcheck.icmp_message): a verdict with a reason
or the codec's own error, never a crash, and bounded work however the counts and pointers lie.
"""

from __future__ import annotations

import struct
import time

from hypothesis import given
from hypothesis import strategies as st

from director.config.model import CheckConfig
from healthcheck import dns
from healthcheck import dns_message as dm
from healthcheck import icmp_message as im
from healthcheck import smtp_reply as sr
from tests.fuzz.mutate import budget, chunked, drawn, fuzzed, mutate_bytes, pick

QUERY = dm.build_query(0x1234, dm.question("www.example.com", "A", "IN"))


def rr(name: bytes, rtype: int, rdata: bytes, ttl: int = 300) -> bytes:
    return name + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def reply(flags: int, answers: list[bytes], extra: int = 0) -> bytes:
    return dm.HEADER.pack(0x1234, flags, 1, len(answers), 0, extra) + QUERY.question + b"".join(answers)


PTR = b"\xc0\x0c"  # the question's name
SEEDS = [
    reply(0x8180, [rr(PTR, 1, bytes([192, 0, 2, 1])), rr(PTR, 28, bytes(15) + b"\x01")]),
    reply(0x8180, [rr(PTR, 5, b"\x03web\xc0\x10"), rr(b"\x03web\xc0\x10", 1, bytes([192, 0, 2, 2]))]),
    reply(0x8183, []),  # NXDOMAIN
    reply(0x8380, []),  # truncated
    reply(0x8180, [rr(PTR, 16, b"\x05hello\x03abc"), rr(PTR, 15, b"\x00\x0a\x02mx\xc0\x10"),
                   rr(PTR, 33, b"\x00\x01\x00\x02\x00\x35\x02ns\xc0\x10")]),
    reply(0x8180, [rr(b"\xc0\x10", 6, b"\x02ns\xc0\x10\x05admin\xc0\x10" + bytes(range(20)))]),
    reply(0x8180, [rr(PTR, 99, b"\xff" * 30)]),
]
DNS_CHECKS = [dns._Judge(CheckConfig(type="dns", query_name="www.example.com", query_type="A", expect=e))
              for e in (None, r"IN A 192\.0\.2\.\d+")]


def judge_dns(data: bytes) -> None:
    started = time.perf_counter()
    try:
        parsed = dm.parse_reply(data, QUERY, True)
    except dm.DnsParseError as exc:
        assert str(exc)
    else:
        assert 0 <= parsed.rcode <= 15 and len(parsed.text) <= dm.MAX_TEXT
    for judge in DNS_CHECKS:
        verdict = judge.judge(data, QUERY, "")
        assert verdict is None or (isinstance(verdict[0], bool) and verdict[1])
    assert time.perf_counter() - started < 0.5  # bounded work, far inside any check timeout


@budget(2500)
@given(fuzzed(SEEDS, max_size=700))
def test_dns_replies_are_a_verdict_or_a_parse_error(data: bytes) -> None:
    judge_dns(data)


@st.composite
def lying(draw: st.DrawFn) -> bytes:
    """A seed whose counts say anything and whose names point anywhere (loops, out of range)."""
    choose = drawn(draw)
    data = bytearray(pick(choose, SEEDS))
    for at in (6, 8, 10):
        data[at:at + 2] = choose(0, 0xFFFF).to_bytes(2, "big")
    for _ in range(choose(0, 4)):
        at = choose(12, len(data) - 2)
        data[at:at + 2] = (0xC000 | choose(0, 0x3FFF)).to_bytes(2, "big")
    return bytes(data)


@budget(1500)
@given(lying())
def test_lying_counts_and_wild_pointers(data: bytes) -> None:
    judge_dns(data)


def test_the_worst_cases_stay_bounded() -> None:
    """A reply claiming 65535 answers, a name of pointers to pointers, an all-pointer tail."""
    judge_dns(dm.HEADER.pack(0x1234, 0x8180, 1, 0xFFFF, 0xFFFF, 0xFFFF) + QUERY.question + b"\xc0\x0c" * 30000)
    judge_dns(reply(0x8180, [rr(PTR, 1, b"\x00" * 4)] * 5000))  # huge but well formed
    assert dm.parse_reply(reply(0x8180, [rr(PTR, 1, b"\x00" * 4)] * 5000), QUERY, True).text.count("\n") < 64


def test_seeds_parse() -> None:
    texts = [dm.parse_reply(s, QUERY, True) for s in SEEDS]
    assert texts[0].text == "www.example.com. 300 IN A 192.0.2.1\nwww.example.com. 300 IN AAAA ::1"
    assert texts[2].rcode_name == "NXDOMAIN" and texts[3].truncated
    assert texts[4].text.splitlines() == ['www.example.com. 300 IN TXT "hello" "abc"',
                                         "www.example.com. 300 IN MX 10 mx.example.com.",
                                         "www.example.com. 300 IN SRV 1 2 53 ns.example.com."]
    assert texts[6].text.endswith("TYPE99 \\# 30 " + "ff" * 30)


# --- SMTP ------------------------------------------------------------------------------------

SMTP_SEEDS = [b"220 mail.example.net ESMTP Postfix\r\n", b"250-mail.example.net\r\n250-PIPELINING\r\n"
              b"250-SIZE 10240000\r\n250 8BITMIME\r\n", b"554 5.7.1 no\r\n", b"502 5.5.1 EHLO\n221 bye\r\n"]


def read_all(chunks: list[bytes]) -> list[object]:
    reader, out = sr.ReplyReader(), []
    try:
        for chunk in chunks:
            got = reader.feed(chunk)
            while got is not None:
                out.append(got)
                got = reader.feed(b"")
    except sr.SmtpParseError as exc:
        out.append(("error", str(exc)))
    return out


@st.composite
def smtp_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    choose = drawn(draw)
    data = mutate_bytes(pick(choose, SMTP_SEEDS), choose, SMTP_SEEDS)
    return data, chunked(data, choose)


@budget(2000)
@given(smtp_streams())
def test_smtp_replies_do_not_depend_on_how_the_bytes_arrive(stream: tuple[bytes, list[bytes]]) -> None:
    data, chunks = stream
    whole, split = read_all([data]), read_all(chunks)
    assert whole == split or (whole and split and whole[-1][0] == "error" and split[-1][0] == "error")
    for item in whole:
        if isinstance(item, sr.Reply):
            assert 200 <= item.code <= 599 and len(item.lines) <= sr.MAX_LINES and item.summary


# --- ICMP ------------------------------------------------------------------------------------

TOKEN = bytes(range(8))
ECHO4 = im.echo(False, 7, 9, TOKEN, im.echo_sum(7, TOKEN))
IP4 = bytes.fromhex("4500001c00004000400100000a0000020a000001")
ICMP_SEEDS = [IP4 + b"\x00" + ECHO4[1:], IP4 + b"\x03\x01\x00\x00\x00\x00\x00\x00" + IP4 + ECHO4,
              b"\x81\x00" + ECHO4[2:], b"\x01\x04" + bytes(6) + b"\x60" + bytes(5) + b"\x00\x3a" + bytes(32) +
              b"\x80" + ECHO4[1:]]


@budget(1500)
@given(fuzzed(ICMP_SEEDS, max_size=200), st.booleans())
def test_icmp_packets_are_ours_or_none(data: bytes, raw: bool) -> None:
    for parse in (im.parse_v4, im.parse_v6):
        heard = parse(data, raw, 7, TOKEN)
        assert heard is None or (0 <= heard.seq <= 0xFFFF and (heard.error is None or heard.quoted))
