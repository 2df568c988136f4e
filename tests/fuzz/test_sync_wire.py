"""IPVS connection-sync messages (director.sync.wire): decoded or a DecodeError, nothing else.

Mutated packets get their size field set to their new length seven times in eight, so they
pass the header check and reach the per-connection parsing. The /proc table parser skips
what does not parse, so it never raises at all.
"""

from __future__ import annotations

import struct
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from director.ipvs.model import Timeouts
from director.sync.wire import HEADER, ConnRow, DecodeError, decode, encode, parse_conn_sync
from tests.fuzz.mutate import budget, drawn, fuzzed, mutate_bytes, mutate_text, pick, seeded

TIMEOUTS = Timeouts(tcp=900, tcpfin=120, udp=300)
ROWS = [
    ConnRow("TCP", "198.51.100.1", 40001, "198.51.100.10", 80, "198.51.100.21", 80, "ESTABLISHED", True, 899),
    ConnRow("TCP", "198.51.100.2", 40002, "198.51.100.10", 80, "198.51.100.22", 8080, "FIN_WAIT", True, 100),
    ConnRow("UDP", "198.51.100.3", 53000, "198.51.100.10", 53, "198.51.100.21", 53, "UDP", True, 299),
    ConnRow("TCP", "2001:db8::1", 8080, "2001:db8::a", 443, "2001:db8::15", 443, "ESTABLISHED", True, 898),
]
METHODS = {
    ("tcp", "198.51.100.10", 80, "198.51.100.21", 80): "dr",
    ("tcp", "198.51.100.10", 80, "198.51.100.22", 8080): "nat",
    ("udp", "198.51.100.10", 53, "198.51.100.21", 53): "tun",
    ("tcp", "2001:db8::a", 443, "2001:db8::15", 443): "dr",
}
SEEDS = [packet for rows in (ROWS, ROWS[:1], ROWS[3:], ROWS[::-1] * 3)
         for packet in encode(rows, METHODS, TIMEOUTS, syncid=51)]
TABLE = """\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
TCP C6336401 D2A4 C633640A 0050 C6336415 0050 ESTABLISHED LOCAL      899
UDP C6336401 D2AE C633640A 0035 C6336415 0035 UDP         SYNC       299
TCP 2001:0db8:0000:0000:0000:0000:0000:0001 1F90 2001:0db8::a 0050 [2001:db8::15] 0050 FIN_WAIT LOCAL 118
"""


def with_size(packet: bytes) -> bytes:
    """The header's size field made to agree with the (mutated) length."""
    if len(packet) < HEADER.size:
        return packet
    return packet[:2] + struct.pack("!H", len(packet) & 0xFFFF) + packet[4:]


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    choose = drawn(draw)
    packet = mutate_bytes(pick(choose, SEEDS), choose, SEEDS)
    return with_size(packet) if choose(0, 7) else packet


def check(packet: bytes) -> None:
    try:
        syncid, conns = decode(packet)
    except DecodeError:
        return
    assert syncid == packet[1]
    assert len(conns) == packet[4]  # exactly the connections the header counts


@budget(1800)
@given(packets())
def test_mutated_sync_messages_decode_or_raise_decode_error(packet: bytes) -> None:
    check(packet)


@budget(1000)
@given(fuzzed(SEEDS, max_size=1500).map(with_size))
def test_random_sync_messages_decode_or_raise_decode_error(packet: bytes) -> None:
    check(packet)


@budget(1000)
@given(st.data())
def test_the_connection_table_parses_whatever_its_lines_hold(data: st.DataObject) -> None:
    """A line that changed format is skipped: a handover never stops on /proc text."""
    choose = drawn(data.draw)
    text = mutate_text(TABLE, choose)
    for resendable_only in (False, True):
        rows = parse_conn_sync(text, resendable_only)
        assert len(rows) <= max(0, len(text.splitlines()) - 1)


def test_seeds_decode() -> None:
    """The unmutated packets decode to every connection they were built from."""
    conns = [conn for packet in SEEDS for conn in decode(packet)[1]]
    assert len(conns) == 4 + 1 + 1 + 12


def test_the_fuzzer_reaches_the_connections() -> None:
    """With the size fixed, mutations get past the header: some decode, others fail on a connection."""
    outcomes: Counter[str] = Counter()
    choose = seeded(1)
    for _ in range(1000):
        try:
            decode(with_size(mutate_bytes(pick(choose, SEEDS), choose, SEEDS)))
            outcomes["decoded"] += 1
        except DecodeError as exc:
            outcomes[str(exc)] += 1
    assert outcomes["decoded"] > 100, outcomes
    assert outcomes["connection size out of bounds"] > 100 and outcomes["connection past the end"] > 10, outcomes
