"""Netlink framing shared by the IPVS (generic netlink) and rtnetlink codecs.

Pure functions on bytes (message headers, attributes, acks) plus `transact`,
the one blocking request/reply exchange both socket edges need. Layouts are
the kernel's `include/uapi/linux/netlink.h`.
"""

from __future__ import annotations

import errno as errno_mod
import socket
import struct
from collections.abc import Iterator

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_DUMP = 0x300
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

NLMSGHDR = struct.Struct("=IHHII")
NLATTR = struct.Struct("=HH")


class DecodeError(ValueError):
    """A message from the kernel did not have the shape we expect."""


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = 4 + len(payload)
    return NLATTR.pack(length, kind) + payload + b"\0" * (-length & 3)


def parse_attrs(data: bytes | memoryview) -> dict[int, bytes]:
    """Attributes by type (flags stripped); the last one wins on repeats."""
    if not isinstance(data, bytes):
        data = bytes(data)  # slices of bytes are bytes: one copy here, none per attribute
    out: dict[int, bytes] = {}
    unpack = NLATTR.unpack_from
    pos, end = 0, len(data)
    while pos + 4 <= end:
        length, kind = unpack(data, pos)
        if length < 4 or pos + length > end:
            raise DecodeError(f"bad attribute length {length} at offset {pos}")
        out[kind & NLA_TYPE_MASK] = data[pos + 4 : pos + length]
        pos += (length + 3) & ~3
    return out


def iter_messages(data: bytes | memoryview) -> Iterator[tuple[int, int, int, memoryview]]:
    """Split one datagram into (type, flags, seq, payload after nlmsghdr)."""
    view = memoryview(data)
    pos, end = 0, len(view)
    while pos + NLMSGHDR.size <= end:
        length, kind, flags, seq, _pid = NLMSGHDR.unpack_from(view, pos)
        if length < NLMSGHDR.size or pos + length > end:
            raise DecodeError(f"bad netlink message length {length} at offset {pos}")
        yield kind, flags, seq, view[pos + NLMSGHDR.size : pos + length]
        pos += (length + 3) & ~3


def error_code(payload: bytes | memoryview) -> int:
    """The positive errno of an NLMSG_ERROR (0 for an ack) or of an NLMSG_DONE."""
    if len(payload) < 4:
        return 0
    return -struct.unpack_from("=i", payload)[0]


def next_seq(seq: int) -> int:
    """The sequence number after `seq`: 32 bits, never 0 (the kernel's own messages)."""
    return (seq + 1) & 0xFFFFFFFF or 1


def transact(sock: socket.socket, buf: bytearray, request: bytes, seq: int) -> list[bytes]:
    """Send one request; return its reply payloads until the ack or NLMSG_DONE.

    Answers to other sequence numbers (late replies to abandoned requests) are
    skipped. Raises OSError with the kernel's errno when it answers with an
    error; the socket's own timeout bounds each wait.
    """
    sock.send(request)
    replies: list[bytes] = []
    while True:
        n = sock.recv_into(buf)
        for kind, _flags, mseq, payload in iter_messages(memoryview(buf)[:n]):
            if mseq != seq:
                continue
            if kind in (NLMSG_ERROR, NLMSG_DONE):
                err = error_code(payload)
                if err:
                    raise OSError(err, errno_mod.errorcode.get(err, str(err)))
                return replies
            replies.append(bytes(payload))
