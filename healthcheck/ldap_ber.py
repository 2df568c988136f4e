"""The slice of LDAPv3 (RFC 4511) a health check speaks, sans-IO: BER encoding of a simple
Bind, a base-scope Search and an Unbind; decoding of the server's LDAPMessages.

Decoding takes definite lengths only, at most 4 length bytes and at most MAX_MESSAGE in
all, and checks each inner length against what is left: huge or lying lengths are an
LdapError, never an allocation.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_MESSAGE = 65536
BIND_REQUEST, BIND_RESPONSE, UNBIND = 0x60, 0x61, 0x42
SEARCH_REQUEST, SEARCH_ENTRY, SEARCH_DONE, SEARCH_REFERENCE = 0x63, 0x64, 0x65, 0x73
EXTENDED_RESPONSE = 0x78

RESULT_NAMES = {0: "success", 1: "operations error", 2: "protocol error", 7: "auth method not supported",
                8: "strong auth required", 32: "no such object", 34: "invalid DN syntax",
                48: "inappropriate authentication", 49: "invalid credentials", 50: "insufficient access rights",
                51: "busy", 52: "unavailable", 53: "unwilling to perform"}


class LdapError(ValueError):
    """The reply is not BER/LDAP as RFC 4511 has it: the reason a person reads."""


class Message(NamedTuple):
    id: int
    op: int  # the protocolOp's tag
    body: bytes  # its contents


class Result(NamedTuple):
    code: int
    matched: str
    diagnostic: str

    @property
    def reason(self) -> str:
        name = RESULT_NAMES.get(self.code, f"result {self.code}")
        detail = f": {self.diagnostic[:120]}" if self.diagnostic else ""
        return f"{name} (ldap {self.code}{detail})"


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def integer(value: int, tag: int = 0x02) -> bytes:
    return tlv(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def octets(text: str, tag: int = 0x04) -> bytes:
    return tlv(tag, text.encode())


def _envelope(message_id: int, op: bytes) -> bytes:
    return tlv(0x30, integer(message_id) + op)


def bind(message_id: int, dn: str, password: str) -> bytes:
    """A simple bind; an empty DN and password is an anonymous bind."""
    return _envelope(message_id, tlv(BIND_REQUEST, integer(3) + octets(dn) + octets(password, 0x80)))


def search_base(message_id: int, dn: str) -> bytes:
    """Read one entry: base scope, (objectClass=*), all user attributes, at most one result."""
    body = (octets(dn) + integer(0, 0x0A) + integer(0, 0x0A) + integer(1) + integer(0) + tlv(0x01, b"\x00")
            + octets("objectClass", 0x87) + tlv(0x30, b""))
    return _envelope(message_id, tlv(SEARCH_REQUEST, body))


def unbind(message_id: int) -> bytes:
    return _envelope(message_id, tlv(UNBIND, b""))


def read_tlv(data: bytes, at: int) -> tuple[int, int, int] | None:
    """(tag, start of contents, end of contents), or None when more bytes are needed."""
    if at + 2 > len(data):
        return None
    tag = data[at]
    if tag & 0x1F == 0x1F:
        raise LdapError("bad BER: multi-byte tag")
    first = data[at + 1]
    start = at + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise LdapError("bad BER: indefinite length")
        if count > 4:
            raise LdapError(f"bad BER: {count}-byte length")
        if start + count > len(data):
            return None
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    if length > MAX_MESSAGE:
        raise LdapError(f"bad BER: length {length} over the {MAX_MESSAGE}-byte limit")
    if start + length > len(data):
        return None
    return tag, start, start + length


def _inner(data: bytes, at: int, end: int, what: str) -> tuple[int, int, int]:
    """An element that must lie wholly inside data[at:end]."""
    found = read_tlv(data[:end], at)
    if found is None:
        raise LdapError(f"bad BER: {what} runs past its container")
    return found


def _int(data: bytes, start: int, end: int) -> int:
    if not 1 <= end - start <= 8:
        raise LdapError("bad BER: integer of bad size")
    return int.from_bytes(data[start:end], "big", signed=True)


class Framer:
    """Cuts the stream into LDAPMessages."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self.buf += data
        out = []
        while True:
            if self.buf and self.buf[0] != 0x30:
                raise LdapError(f"bad LDAP message: tag {self.buf[0]:#04x}, not a SEQUENCE")
            raw = bytes(self.buf)
            found = read_tlv(raw, 0)
            if found is None:
                if len(self.buf) > MAX_MESSAGE + 6:
                    raise LdapError("bad BER: message over the limit")
                return out
            _, start, end = found
            out.append(parse_message(raw, start, end))
            del self.buf[:end]


def parse_message(data: bytes, start: int, end: int) -> Message:
    tag, s, e = _inner(data, start, end, "message ID")
    if tag != 0x02:
        raise LdapError("bad LDAP message: no message ID")
    message_id = _int(data, s, e)
    op, os_, oe = _inner(data, e, end, "protocolOp")
    return Message(message_id, op, data[os_:oe])


def parse_result(body: bytes) -> Result:
    """An LDAPResult: resultCode, matchedDN, diagnosticMessage (referral and the rest ignored)."""
    tag, s, e = _inner(body, 0, len(body), "resultCode")
    if tag != 0x0A:
        raise LdapError("bad LDAP result: no resultCode")
    code = _int(body, s, e)
    parts = []
    at = e
    for what in ("matchedDN", "diagnosticMessage"):
        tag, s, at = _inner(body, at, len(body), what)
        if tag != 0x04:
            raise LdapError(f"bad LDAP result: {what} is not an OCTET STRING")
        parts.append(body[s:at].decode("utf-8", "replace"))
    return Result(code, parts[0], parts[1])


def entry_text(body: bytes) -> str:
    """A SearchResultEntry as text to match: `dn: ...` then `attr: value` lines."""
    _, s, e = _inner(body, 0, len(body), "objectName")
    lines = [f"dn: {body[s:e].decode('utf-8', 'replace')}"]
    _, s, end = _inner(body, e, len(body), "attributes")
    at = s
    while at < end:
        _, ps, pe = _inner(body, at, end, "attribute")
        _, ts, te = _inner(body, ps, pe, "attribute type")
        name = body[ts:te].decode("utf-8", "replace")
        _, vs, ve = _inner(body, te, pe, "attribute values")
        v = vs
        while v < ve:
            _, xs, xe = _inner(body, v, ve, "attribute value")
            lines.append(f"{name}: {body[xs:xe].decode('utf-8', 'replace')}")
            v = xe
        at = pe
    return "\n".join(lines)
