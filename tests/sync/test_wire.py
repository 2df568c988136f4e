"""The handover flush's sans-IO core: which connections it re-sends and how it encodes them.
The kernel-side proof (the peer's kernel installs them, our bytes match the kernel's own) is
in test_sync_flush_kernel.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from director.ipvs.model import Timeouts
from director.sync.wire import (
    FLAG_INACTIVE,
    FLAG_NOOUTPUT,
    MAX_PAYLOAD,
    ConnRow,
    decode,
    encode,
    parse_conn_sync,
    recently_active,
)

TIMEOUTS = Timeouts(tcp=900, tcpfin=120, udp=300)
TABLE = """\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
TCP C6336401 D2A4 C633640A 0050 C6336415 0050 ESTABLISHED LOCAL      899
TCP C6336401 D2A6 C633640A 0050 C6336416 0050 ESTABLISHED LOCAL      600
TCP C6336401 D2A8 C633640A 0050 C6336417 0050 FIN_WAIT    LOCAL      118
TCP C6336401 D2AA C633640A 0050 C6336415 0050 ESTABLISHED SYNC       899
TCP C6336401 D2AC C633640A 0050 C6336415 0050 SYN_RECV    LOCAL       59
UDP C6336401 D2AE C633640A 0035 C6336415 0035 UDP         LOCAL      299
TCP 2001:0db8:0000:0000:0000:0000:0000:0001 1F90 2001:0db8:0000:0000:0000:0000:0000:000a 0050 \
2001:0db8:0000:0000:0000:0000:0000:0015 0050 ESTABLISHED LOCAL      898
garbage line
"""
METHODS = {
    ("tcp", "198.51.100.10", 80, "198.51.100.21", 80): "dr",
    ("tcp", "198.51.100.10", 80, "198.51.100.22", 80): "dr",
    ("tcp", "198.51.100.10", 80, "198.51.100.23", 80): "dr",
    ("udp", "198.51.100.10", 53, "198.51.100.21", 53): "nat",
    ("tcp", "2001:db8::a", 80, "2001:db8::15", 80): "nat",
}


def test_parse_reads_both_families_and_skips_what_does_not_parse() -> None:
    rows = parse_conn_sync(TABLE)
    assert len(rows) == 7
    first = rows[0]
    assert (first.protocol, first.client, first.client_port, first.virtual, first.virtual_port) == (
        "TCP", "198.51.100.1", 0xD2A4, "198.51.100.10", 80)
    assert (first.dest, first.state, first.local, first.expires) == ("198.51.100.21", "ESTABLISHED", True, 899)
    assert rows[3].local is False
    assert (rows[6].client, rows[6].virtual, rows[6].dest) == ("2001:db8::1", "2001:db8::a", "2001:db8::15")


def test_only_recent_connections_made_here_in_live_states_are_resent() -> None:
    chosen = recently_active(parse_conn_sync(TABLE), TIMEOUTS, window=5.0)
    # idle for 300 s, learnt from the peer, and still in the handshake are all left out
    assert [row.client_port for row in chosen] == [0xD2A4, 0xD2A8, 0xD2AE, 0x1F90]


def test_encode_round_trips_through_the_decoder() -> None:
    rows = recently_active(parse_conn_sync(TABLE), TIMEOUTS, window=5.0)
    (packet,) = encode(rows, METHODS, TIMEOUTS, syncid=51)
    syncid, conns = decode(packet)
    assert syncid == 51
    established, fin_wait, udp, six = conns
    assert (established.client, established.client_port, established.dest, established.dest_port) == (
        "198.51.100.1", 0xD2A4, "198.51.100.21", 80)
    assert (established.state, established.timeout) == (1, 900)
    assert established.flags == 3 | FLAG_NOOUTPUT  # direct routing, established
    assert (fin_wait.state, fin_wait.timeout, fin_wait.flags) == (4, 120, 3 | FLAG_NOOUTPUT | FLAG_INACTIVE)
    assert (udp.protocol, udp.state, udp.timeout, udp.flags) == (17, 0, 300, FLAG_INACTIVE)
    assert (six.client, six.virtual, six.dest, six.flags) == ("2001:db8::1", "2001:db8::a", "2001:db8::15", 0)


def test_rows_whose_real_server_is_gone_are_left_out() -> None:
    rows = recently_active(parse_conn_sync(TABLE), TIMEOUTS, window=5.0)
    assert encode(rows, {}, TIMEOUTS, syncid=1) == []


def test_many_connections_split_into_packets_that_never_fragment() -> None:
    row = ConnRow("TCP", "198.51.100.1", 1, "198.51.100.10", 80, "198.51.100.21", 80, "ESTABLISHED", True, 900)
    rows = [replace(row, client_port=port) for port in range(1, 1001)]
    packets = encode(rows, METHODS, TIMEOUTS, syncid=1)
    assert all(len(packet) <= MAX_PAYLOAD for packet in packets)
    ports = [conn.client_port for packet in packets for conn in decode(packet)[1]]
    assert ports == list(range(1, 1001))


@pytest.mark.parametrize("packet", [
    b"",
    b"\x01\x33\x00\x08\x00\x01\x00\x00",  # reserved byte set: a version 0 message
    b"\x00\x33\x00\x10\x01\x01\x00\x00" + bytes(8),  # one connection announced, too short for it
    b"\x00\x33\x00\x09\x00\x01\x00\x00",  # size field disagrees with the length
])
def test_decode_refuses_what_is_not_a_whole_version_1_message(packet: bytes) -> None:
    with pytest.raises(ValueError):
        decode(packet)


def test_a_flush_converts_only_the_rows_it_may_send() -> None:
    rows = parse_conn_sync(TABLE, resendable_only=True)
    assert [row.client_port for row in rows] == [0xD2A4, 0xD2A6, 0xD2A8, 0xD2AE, 0x1F90]
