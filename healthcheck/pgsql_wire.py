"""PostgreSQL frontend/backend protocol 3.0, sans-IO: message framing, the startup, the
password exchanges (cleartext, md5, SCRAM-SHA-256 per RFC 5802 / RFC 7677) and the replies a
health check reads (ErrorResponse, ReadyForQuery, DataRow).

Lengths from the wire are capped (MAX_MESSAGE) and SCRAM's iteration count too, so a hostile
server can neither make the check allocate nor burn the event loop's CPU.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import stringprep
import struct
import unicodedata
from typing import NamedTuple

MAX_MESSAGE = 65536
MAX_SCRAM_ITERATIONS = 100_000  # PostgreSQL's default is 4096
PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
SCRAM = "SCRAM-SHA-256"

# SQLSTATE codes people meet, named as a person would say them.
STATE_NAMES = {"28P01": "access denied", "28000": "access denied", "3D000": "unknown database",
               "53300": "too many connections", "57P03": "server starting up or shutting down",
               "42P01": "unknown table", "42601": "query syntax error", "42501": "permission denied"}


class PgsqlError(ValueError):
    """The reply is not what the protocol allows: the reason a person reads."""


class ServerError(Exception):
    def __init__(self, fields: dict[str, str]) -> None:
        self.state = fields.get("C", "")
        self.message = fields.get("M", "error")[:160]
        super().__init__(self.message)

    @property
    def reason(self) -> str:
        return f"{STATE_NAMES.get(self.state, 'server error')} (pgsql {self.state}: {self.message})"


class Message(NamedTuple):
    kind: str
    body: bytes


class Framer:
    """Backend messages: a type byte, a 4-byte length (itself included), the body."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self.buf += data
        out = []
        while len(self.buf) >= 5:
            length = struct.unpack_from(">I", self.buf, 1)[0]
            if length < 4 or length > MAX_MESSAGE:
                raise PgsqlError(f"bad message: length {length} (limit {MAX_MESSAGE})")
            if len(self.buf) < 1 + length:
                break
            out.append(Message(chr(self.buf[0]), bytes(self.buf[5:1 + length])))
            del self.buf[:1 + length]
        return out


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack(">I", len(body) + 4) + body


def ssl_request() -> bytes:
    """8 bytes every PostgreSQL server answers with one byte, S or N: a login-free probe."""
    return struct.pack(">II", 8, SSL_REQUEST)


def startup(user: str, database: str | None) -> bytes:
    body = struct.pack(">I", PROTOCOL_3) + b"user\0" + user.encode() + b"\0"
    if database:
        body += b"database\0" + database.encode() + b"\0"
    body += b"application_name\0directord\0\0"
    return struct.pack(">I", len(body) + 4) + body


def query(sql: str) -> bytes:
    return _message(b"Q", sql.encode() + b"\0")


def terminate() -> bytes:
    return _message(b"X", b"")


def password_message(text: bytes) -> bytes:
    return _message(b"p", text + b"\0")


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    inner = hashlib.md5((password + user).encode()).hexdigest()
    return b"md5" + hashlib.md5(inner.encode() + salt).hexdigest().encode()


def error_fields(body: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in body.split(b"\0"):
        if part:
            fields.setdefault(chr(part[0]), part[1:].decode("utf-8", "replace"))
    return fields


def auth_code(body: bytes) -> int:
    if len(body) < 4:
        raise PgsqlError("bad authentication request: truncated")
    return struct.unpack_from(">I", body)[0]


def data_row(body: bytes) -> list[str]:
    if len(body) < 2:
        raise PgsqlError("bad data row: truncated")
    count, at, values = struct.unpack_from(">H", body)[0], 2, []
    for _ in range(count):
        if at + 4 > len(body):
            raise PgsqlError("bad data row: truncated")
        size = struct.unpack_from(">i", body, at)[0]
        at += 4
        if size == -1:
            values.append("NULL")
            continue
        if size < 0 or at + size > len(body):
            raise PgsqlError(f"bad data row: value of {size} bytes past the message's end")
        values.append(body[at:at + size].decode("utf-8", "replace"))
        at += size
    return values


class Scram:
    """The client side of SCRAM-SHA-256 (no channel binding: "n,,")."""

    def __init__(self, password: str, nonce: str | None = None) -> None:
        self.password = password
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.server_signature = b""

    def initial(self) -> bytes:
        """SASLInitialResponse: the mechanism, then the client-first message."""
        first = ("n,," + self.first_bare).encode()
        return _message(b"p", SCRAM.encode() + b"\0" + struct.pack(">I", len(first)) + first)

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8", "replace")
        attrs = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        nonce, salt_text, rounds = attrs.get("r", ""), attrs.get("s"), attrs.get("i", "")
        if not nonce.startswith(self.nonce) or len(nonce) == len(self.nonce):
            raise PgsqlError("bad SCRAM exchange: the server's nonce does not extend ours")
        if salt_text is None or not rounds.isdigit():
            raise PgsqlError("bad SCRAM exchange: no salt or iteration count")
        iterations = int(rounds[:7])
        if not 1 <= iterations <= MAX_SCRAM_ITERATIONS:
            raise PgsqlError(f"bad SCRAM exchange: {rounds[:12]} iterations (limit {MAX_SCRAM_ITERATIONS})")
        try:
            salt = base64.b64decode(salt_text, validate=True)
        except ValueError:
            raise PgsqlError("bad SCRAM exchange: the salt is not base64") from None
        salted = _salted(self.password, salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        without_proof = f"c=biws,r={nonce}"
        auth = f"{self.first_bare},{text},{without_proof}".encode()
        signature = hmac.digest(hashlib.sha256(client_key).digest(), auth, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self.server_signature = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), auth, "sha256")
        final = f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
        return _message(b"p", final)

    def verify(self, server_final: bytes) -> None:
        text = server_final.decode("utf-8", "replace")
        if text.startswith("e="):
            raise PgsqlError(f"SCRAM refused: {text[2:60]}")
        expected = "v=" + base64.b64encode(self.server_signature).decode()
        if not hmac.compare_digest(text.split(",")[0], expected):
            raise PgsqlError("bad SCRAM exchange: the server's signature is wrong (not the real server?)")


@functools.lru_cache(maxsize=64)
def _salted(password: str, salt: bytes, iterations: int) -> bytes:
    """PBKDF2 costs milliseconds; the same server gives the same salt every time."""
    return hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)


def saslprep(text: str) -> str:
    """RFC 4013 as PostgreSQL applies it to SCRAM passwords: non-ASCII spaces become spaces,
    what maps to nothing goes, NFKC; a string SASLprep refuses is used as it is (so does
    the server)."""
    if text.isascii():
        return text
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    prepared = unicodedata.normalize("NFKC", mapped)
    refused = (stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
               stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
               stringprep.in_table_c9)
    if any(test(c) for c in prepared for test in refused):
        return text
    return prepared
