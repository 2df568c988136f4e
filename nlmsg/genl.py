"""Generic netlink: the genl header, typed attributes and family resolution.

Pure functions on bytes shared by every generic netlink family the project speaks
(IPVS today); layouts are the kernel's `include/uapi/linux/genetlink.h`.
"""

from __future__ import annotations

import struct

from nlmsg import (
    NLA_F_NESTED,
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NLMSGHDR,
    DecodeError,
    attr,
    parse_attrs,
)

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2

_GENLHDR = struct.Struct("=BBH")
_U16 = struct.Struct("=H")
_U32 = struct.Struct("=I")
_BE16 = struct.Struct("!H")
_HDR_LEN = NLMSGHDR.size + _GENLHDR.size
_REQ_HDR = struct.Struct("=IHHIIBBH")  # nlmsghdr + genlmsghdr in one pack
GENL_HDR_LEN = _HDR_LEN


# --- attributes -------------------------------------------------------------------


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def attr_u8(kind: int, value: int) -> bytes:
    return attr(kind, bytes((value,)))


def attr_u16(kind: int, value: int) -> bytes:
    return attr(kind, _U16.pack(value))


def attr_be16(kind: int, value: int) -> bytes:
    return attr(kind, _BE16.pack(value))


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def get_u8(attrs: dict[int, bytes], kind: int, default: int = 0) -> int:
    raw = attrs.get(kind)
    return raw[0] if raw else default


def _get_int(attrs: dict[int, bytes], kind: int, layout: struct.Struct, default: int) -> int:
    """An integer attribute (empty: `default`); a shorter one than its type is malformed,
    a DecodeError rather than the struct.error it would raise."""
    raw = attrs.get(kind)
    if not raw:
        return default
    if len(raw) < layout.size:
        raise DecodeError(f"attribute {kind} has {len(raw)} bytes, too few for a {layout.size}-byte integer")
    return layout.unpack_from(raw)[0]


def get_u16(attrs: dict[int, bytes], kind: int, default: int = 0) -> int:
    return _get_int(attrs, kind, _U16, default)


def get_be16(attrs: dict[int, bytes], kind: int, default: int = 0) -> int:
    return _get_int(attrs, kind, _BE16, default)


def get_u32(attrs: dict[int, bytes], kind: int, default: int = 0) -> int:
    return _get_int(attrs, kind, _U32, default)


def get_str(attrs: dict[int, bytes], kind: int) -> str:
    """Up to the first NUL; bytes that are not UTF-8 are replaced, as a name the kernel
    reports (a scheduler, an interface) is shown or compared, never worth failing a dump for."""
    raw = attrs.get(kind)
    return raw.split(b"\0", 1)[0].decode(errors="replace") if raw else ""


# --- messages ---------------------------------------------------------------------


def message(family_id: int, cmd: int, version: int, seq: int, flags: int, payload: bytes = b"") -> bytes:
    """A generic netlink request: nlmsghdr + genlmsghdr + attributes."""
    return _REQ_HDR.pack(_HDR_LEN + len(payload), family_id, NLM_F_REQUEST | flags, seq, 0, cmd, version, 0) + payload


_ACK_HEAD = struct.Struct("=IHHIIi")


def single_ack(data: bytes | bytearray | memoryview, size: int) -> tuple[int, int] | None:
    """(seq, errno) when the datagram is exactly one NLMSG_ERROR, else None.

    The fast path for pipelined writes: each ack arrives as its own datagram.
    """
    if size < _ACK_HEAD.size:
        return None
    length, kind, _flags, seq, _pid, err = _ACK_HEAD.unpack_from(data)
    if kind != NLMSG_ERROR or length != size:
        return None
    return seq, -err


def genl_attrs(payload: bytes | memoryview) -> tuple[int, dict[int, bytes]]:
    """(cmd, attributes) of a generic netlink message payload."""
    if len(payload) < _GENLHDR.size:
        raise DecodeError("generic netlink message too short")
    return payload[0], parse_attrs(payload[_GENLHDR.size :])


def getfamily_request(seq: int, name: str) -> bytes:
    payload = attr_str(CTRL_ATTR_FAMILY_NAME, name)
    return (
        NLMSGHDR.pack(_HDR_LEN + len(payload), GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, 0)
        + _GENLHDR.pack(CTRL_CMD_GETFAMILY, 1, 0)
        + payload
    )


def decode_family_id(payload: bytes | memoryview) -> int:
    _cmd, attrs = genl_attrs(payload)
    if CTRL_ATTR_FAMILY_ID not in attrs:
        raise DecodeError("CTRL_CMD_GETFAMILY reply without a family id")
    return get_u16(attrs, CTRL_ATTR_FAMILY_ID)
