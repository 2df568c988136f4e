"""Sans-IO DNS messages for the dns check: build one query, judge one reply (RFC 1035).

No sockets here. The parser reads replies from whoever answers at a real server's address,
so every step is bounded: a name is followed through at most `MAX_JUMPS` compression
pointers, each pointing strictly before the label that holds it (a loop cannot form), names
stop at 255 bytes, record counts are checked against the bytes that could hold them before
any record is read, and at most `MAX_RECORDS` answers are rendered, `MAX_TEXT` characters in
all. Anything else is a `DnsParseError` whose message is the reason a person reads.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "OPT": 41, "ANY": 255}
TYPE_NAMES = {code: name for name, code in TYPES.items()}
CLASSES = {"IN": 1, "CH": 3}
CLASS_NAMES = {code: name for name, code in CLASSES.items()}
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5,
          "YXDOMAIN": 6, "YXRRSET": 7, "NXRRSET": 8, "NOTAUTH": 9, "NOTZONE": 10}
RCODE_NAMES = {code: name for name, code in RCODES.items()}

HEADER = struct.Struct("!HHHHHH")
MAX_UDP = 512  # no EDNS: a longer answer comes truncated (TC) and is asked again over TCP
MAX_MESSAGE = 65535  # a TCP message's 2-byte length
MAX_NAME = 255
MAX_JUMPS = 32  # compression pointers followed in one name (a name has at most 127 labels)
MAX_RECORDS = 64  # answers rendered as text for `expect`
MAX_TEXT = 8192  # characters of rendered answers
MIN_RR = 11  # a record's least size: a root name (1), type, class, ttl, rdlength (10)

_QR, _TC, _RD = 0x8000, 0x0200, 0x0100


class DnsParseError(ValueError):
    """The reply is not a DNS message answering our query; the text says why."""


class Query(NamedTuple):
    """One query: the wire bytes and what a reply must echo."""

    ident: int
    question: bytes  # the encoded question section (name, type, class)
    data: bytes  # the whole message, for UDP


class Reply(NamedTuple):
    rcode: int
    truncated: bool
    answers: int  # records in the answer section
    text: str  # the answers as zone-file lines ("" when not rendered)

    @property
    def rcode_name(self) -> str:
        return RCODE_NAMES.get(self.rcode, f"RCODE{self.rcode}")


def encode_name(name: str) -> bytes:
    """Dotted text as wire labels; `name` was checked by the config loader."""
    labels = [] if name in ("", ".") else name.removesuffix(".").split(".")
    out = bytearray()
    for label in labels:
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label {label!r}")
        out += bytes((len(raw),)) + raw
    out += b"\x00"
    if len(out) > MAX_NAME:
        raise ValueError("DNS name longer than 255 bytes")
    return bytes(out)


def question(name: str, qtype: str, qclass: str) -> bytes:
    """The question section, built once per probe and reused by every query."""
    return encode_name(name) + struct.pack("!HH", TYPES[qtype], CLASSES[qclass])


def build_query(ident: int, question_bytes: bytes) -> Query:
    """A standard query with recursion desired (a resolver needs it; an authority ignores it)."""
    data = HEADER.pack(ident, _RD, 1, 0, 0, 0) + question_bytes
    return Query(ident, question_bytes, data)


def tcp_frame(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def parse_reply(data: bytes, query: Query, render: bool) -> Reply:
    """Judge `data` as the reply to `query`; with `render`, the answers as text.

    A reply with another id, or not echoing our question, is a `DnsParseError` like a
    malformed one: the caller decides whether to wait for another (UDP) or fail.
    """
    if len(data) < HEADER.size:
        raise DnsParseError(f"reply of {len(data)} bytes is shorter than a DNS header")
    ident, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(data)
    if ident != query.ident:
        raise DnsParseError(f"reply id {ident} is not the query's ({query.ident})")
    if not flags & _QR:
        raise DnsParseError("not a response (QR bit clear)")
    if (flags >> 11) & 0xF:
        raise DnsParseError(f"response opcode {(flags >> 11) & 0xF}, not QUERY")
    rcode = flags & 0xF
    truncated = bool(flags & _TC)
    if qdcount > 1:
        raise DnsParseError(f"{qdcount} questions in the reply (asked one)")
    offset = HEADER.size
    if qdcount == 1:
        offset = _echoed_question(data, offset, query.question)
    elif rcode == 0 and not truncated:
        raise DnsParseError("reply without the question section")
    if truncated:  # what follows may be cut anywhere: ask again over TCP
        return Reply(rcode, True, ancount, "")
    records = ancount + nscount + arcount
    if records * MIN_RR > len(data) - offset:
        raise DnsParseError(f"reply claims {records} records but has room for "
                            f"{(len(data) - offset) // MIN_RR}")
    lines: list[str] = []
    size = 0
    for index in range(ancount):
        offset, line = _record(data, offset, render and index < MAX_RECORDS)
        if line is not None and size < MAX_TEXT:
            lines.append(line[: MAX_TEXT - size])
            size += len(lines[-1]) + 1
    return Reply(rcode, False, ancount, "\n".join(lines))


def _echoed_question(data: bytes, offset: int, asked: bytes) -> int:
    """Where the echoed question ends; it must be the one asked (the name in any case)."""
    end = offset + len(asked)
    if data[offset:end] == asked:  # the usual echo, byte for byte: no need to read the labels
        return end
    echoed = _question_at(data, offset)
    if echoed is None or echoed[0][:-4].lower() != asked[:-4].lower() or echoed[0][-4:] != asked[-4:]:
        raise DnsParseError("reply does not echo the question asked")
    return echoed[1]


def _question_at(data: bytes, offset: int) -> tuple[bytes, int] | None:
    """The question at `offset` in wire form without compression, and where it ends."""
    labels, offset = read_labels(data, offset)
    if offset + 4 > len(data):
        return None
    wire = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
    return wire + data[offset:offset + 4], offset + 4


def read_name(data: bytes, offset: int) -> tuple[str, int]:
    """The (possibly compressed) name at `offset` as dotted text, and the offset after it."""
    labels, offset = read_labels(data, offset)
    return (".".join(map(_label_text, labels)) + "." if labels else "."), offset


def read_labels(data: bytes, offset: int) -> tuple[list[bytes], int]:
    """The (possibly compressed) name at `offset` as its labels, and the offset after it."""
    labels: list[bytes] = []
    length = 1  # the root's zero byte
    end = -1  # where the name ends in the record (after its first pointer)
    jumps = 0
    floor = offset  # a pointer must point before the label holding it
    while True:
        if offset >= len(data):
            raise DnsParseError("name runs past the end of the reply")
        size = data[offset]
        if size == 0:
            offset += 1
            break
        kind = size & 0xC0
        if kind == 0xC0:
            if offset + 1 >= len(data):
                raise DnsParseError("compression pointer cut off at the end of the reply")
            target = ((size & 0x3F) << 8) | data[offset + 1]
            if target >= floor:
                raise DnsParseError(f"compression pointer to {target} does not point backwards (loop)")
            jumps += 1
            if jumps > MAX_JUMPS:
                raise DnsParseError(f"name follows more than {MAX_JUMPS} compression pointers")
            if end < 0:
                end = offset + 2
            offset = floor = target
            continue
        if kind:
            raise DnsParseError(f"label type 0x{kind:02x} is not supported")
        label = data[offset + 1:offset + 1 + size]
        if len(label) < size:
            raise DnsParseError("label runs past the end of the reply")
        length += size + 1
        if length > MAX_NAME:
            raise DnsParseError("name longer than 255 bytes")
        labels.append(label)
        offset += 1 + size
    return labels, (end if end >= 0 else offset)


def _label_text(label: bytes) -> str:
    """A label as zone-file text: printable ASCII as is, the rest as \\DDD (RFC 1035 5.1)."""
    if label.isascii() and label.isalnum():
        return label.decode("ascii")
    out = []
    for byte in label:
        char = chr(byte)
        out.append(char if 0x21 <= byte < 0x7F and char not in '.\\"();' else f"\\{byte:03d}")
    return "".join(out)


_RR = struct.Struct("!HHIH")


def _record(data: bytes, offset: int, render: bool) -> tuple[int, str | None]:
    """Skip (or render) the record at `offset`; the offset after it."""
    if not render and offset + 1 < len(data) and data[offset] >= 0xC0:
        # a name that is one pointer, not followed when nothing is rendered (checked for direction)
        if ((data[offset] & 0x3F) << 8 | data[offset + 1]) >= offset:
            raise DnsParseError("compression pointer does not point backwards (loop)")
        offset += 2
        name = ""
    else:
        name, offset = read_name(data, offset)
    if offset + _RR.size > len(data):
        raise DnsParseError("record header runs past the end of the reply")
    rtype, rclass, ttl, rdlength = _RR.unpack_from(data, offset)
    start = offset + _RR.size
    end = start + rdlength
    if end > len(data):
        raise DnsParseError(f"record data of {rdlength} bytes runs past the end of the reply")
    if not render:
        return end, None
    rdata = _rdata(data, start, end, rtype)
    kind = TYPE_NAMES.get(rtype, f"TYPE{rtype}")
    klass = CLASS_NAMES.get(rclass, f"CLASS{rclass}")
    return end, f"{name} {ttl} {klass} {kind} {rdata}"


def _rdata(data: bytes, start: int, end: int, rtype: int) -> str:
    """Record data as zone-file text; a type not listed here as RFC 3597's \\# form."""
    raw = data[start:end]
    if rtype == 1 and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if rtype == 28 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    if rtype in (2, 5, 12):
        return _name_within(data, start, end)
    if rtype == 15 and len(raw) >= 3:
        return f"{int.from_bytes(raw[:2], 'big')} {_name_within(data, start + 2, end)}"
    if rtype == 33 and len(raw) >= 7:
        prio, weight, port = struct.unpack_from("!HHH", raw)
        return f"{prio} {weight} {port} {_name_within(data, start + 6, end)}"
    if rtype == 6:
        mname, at = read_name(data, start)
        rname, at = read_name(data, at)
        if at + 20 == end:
            return " ".join([mname, rname, *map(str, struct.unpack_from("!IIIII", data, at))])
        raise DnsParseError("SOA record data has the wrong length")
    if rtype == 16:
        return _txt(raw)
    return f"\\# {len(raw)} {raw.hex()}"


def _name_within(data: bytes, start: int, end: int) -> str:
    name, after = read_name(data, start)
    if after != end:
        raise DnsParseError("name does not fill its record data")
    return name


def _txt(raw: bytes) -> str:
    parts, at = [], 0
    while at < len(raw):
        size = raw[at]
        chunk = raw[at + 1:at + 1 + size]
        if len(chunk) < size:
            raise DnsParseError("TXT string runs past its record data")
        parts.append('"' + "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:03d}"
                                   for b in chunk) + '"')
        at += 1 + size
    return " ".join(parts)


def tcp_length(buf: bytes | bytearray) -> int | None:
    """The length of the framed message at the start of `buf`, once its 2 bytes are in."""
    return int.from_bytes(buf[:2], "big") if len(buf) >= 2 else None
