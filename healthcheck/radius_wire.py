"""RADIUS (RFC 2865) for a health check, sans-IO: an Access-Request with User-Name, a hidden
User-Password (5.2) and a Message-Authenticator (RFC 3579 3.2, which servers hardened
against BlastRADIUS require); the reply's Response Authenticator and attributes checked.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import NamedTuple

MAX_PACKET = 4096  # RFC 2865 3: the largest packet
ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE = 1, 2, 3, 11
USER_NAME, USER_PASSWORD, NAS_IDENTIFIER, REPLY_MESSAGE, MESSAGE_AUTHENTICATOR = 1, 2, 32, 18, 80
CODE_NAMES = {ACCESS_ACCEPT: "Access-Accept", ACCESS_REJECT: "Access-Reject", ACCESS_CHALLENGE: "Access-Challenge"}


class RadiusError(ValueError):
    """Not a RADIUS reply to our request: the reason a person reads."""


class Request(NamedTuple):
    id: int
    authenticator: bytes
    data: bytes


class Reply(NamedTuple):
    code: int
    attributes: list[tuple[int, bytes]]

    @property
    def message(self) -> str:
        text = b" ".join(v for t, v in self.attributes if t == REPLY_MESSAGE)
        return text[:120].decode("utf-8", "replace")


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 5.2: pad to 16-byte blocks, each XORed with MD5(secret + previous block)."""
    padded = password.ljust(max(16, (len(password) + 15) // 16 * 16), b"\0")
    out, last = bytearray(), authenticator
    for i in range(0, len(padded), 16):
        key = hashlib.md5(secret + last).digest()
        last = bytes(a ^ b for a, b in zip(padded[i:i + 16], key, strict=True))
        out += last
    return bytes(out)


def _attr(kind: int, value: bytes) -> bytes:
    return bytes([kind, len(value) + 2]) + value


def access_request(user: str, password: str, secret: bytes, ident: int | None = None,
                   authenticator: bytes | None = None) -> Request:
    ident = os.urandom(1)[0] if ident is None else ident
    authenticator = authenticator or os.urandom(16)
    attrs = (_attr(USER_NAME, user.encode()[:253])
             + _attr(USER_PASSWORD, hide_password(password.encode()[:128], secret, authenticator))
             + _attr(NAS_IDENTIFIER, b"directord"))
    length = 20 + len(attrs) + 18
    head = struct.pack(">BBH", ACCESS_REQUEST, ident, length) + authenticator
    blank = head + attrs + _attr(MESSAGE_AUTHENTICATOR, b"\0" * 16)
    mac = hmac.digest(secret, blank, "md5")
    return Request(ident, authenticator, head + attrs + _attr(MESSAGE_AUTHENTICATOR, mac))


def parse_reply(data: bytes, request: Request, secret: bytes) -> Reply | None:
    """The reply to `request`; None for a datagram with another identifier (a stray, ignored).
    RadiusError when it claims to be ours but is malformed or not signed with our secret."""
    if len(data) < 20:
        raise RadiusError(f"bad RADIUS reply: {len(data)} bytes, under the 20-byte header")
    code, ident, length = struct.unpack_from(">BBH", data)
    if ident != request.id:
        return None
    if not 20 <= length <= min(len(data), MAX_PACKET):
        raise RadiusError(f"bad RADIUS reply: length field {length} for a {len(data)}-byte datagram")
    data = data[:length]
    attrs, at = [], 20
    while at < length:
        if at + 2 > length or data[at + 1] < 2 or at + data[at + 1] > length:
            raise RadiusError(f"bad RADIUS reply: attribute at byte {at} has a bad length")
        attrs.append((data[at], data[at + 2:at + data[at + 1]]))
        at += data[at + 1]
    if code not in CODE_NAMES:  # before the signature: an echo of the request is no server
        raise RadiusError(f"bad RADIUS reply: code {code} to an Access-Request")
    expected = hashlib.md5(data[:4] + request.authenticator + data[20:] + secret).digest()
    if not hmac.compare_digest(expected, data[4:20]):
        raise RadiusError("bad Response Authenticator (wrong secret?)")
    _check_message_authenticator(data, attrs, request, secret)
    return Reply(code, attrs)


def _check_message_authenticator(data: bytes, attrs: list[tuple[int, bytes]], request: Request, secret: bytes) -> None:
    """RFC 3579 3.2: when the reply carries one, it is HMAC-MD5 over the reply with the request's
    authenticator in place and the attribute's value zeroed."""
    at = 20
    for kind, value in attrs:
        if kind == MESSAGE_AUTHENTICATOR:
            if len(value) != 16:
                raise RadiusError("bad RADIUS reply: Message-Authenticator is not 16 bytes")
            blank = data[:4] + request.authenticator + data[20:at + 2] + b"\0" * 16 + data[at + 18:]
            if not hmac.compare_digest(hmac.digest(secret, blank, "md5"), value):
                raise RadiusError("bad Message-Authenticator (wrong secret?)")
            return
        at += len(value) + 2
