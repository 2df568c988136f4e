"""MySQL/MariaDB client protocol, sans-IO: packet framing, the v10 handshake, the
mysql_native_password scramble and the replies a health check needs (OK, ERR, result sets).

Every length read from the wire is checked against what is left and against MAX_PACKET,
so a server that lies about a length gives a MysqlError, never a huge allocation.
"""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

MAX_PACKET = 65536  # a health check's handshake, OK/ERR or row is far smaller
MAX_ROWS = 100  # rows of a query result looked at

CLIENT_LONG_PASSWORD = 0x1
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
NATIVE = "mysql_native_password"
UTF8MB4 = 45

# Error codes people meet, named as a person would say them.
ERROR_NAMES = {1045: "access denied", 1044: "access denied to database", 1049: "unknown database",
               1130: "host not allowed", 1040: "too many connections", 1129: "host blocked",
               1146: "unknown table", 1064: "query syntax error", 1142: "command denied"}


class MysqlError(ValueError):
    """The reply is not what the protocol allows: the reason a person reads."""


class ServerError(Exception):
    """An ERR packet: the server said no."""

    def __init__(self, code: int, state: str, message: str) -> None:
        super().__init__(message)
        self.code, self.state, self.message = code, state, message

    @property
    def reason(self) -> str:
        name = ERROR_NAMES.get(self.code, "server error")
        return f"{name} (mysql {self.code}: {self.message})"


class Handshake(NamedTuple):
    version: str
    capabilities: int
    salt: bytes
    plugin: str


class Framer:
    """Cuts a byte stream into packets; keeps the last sequence number seen."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.seq = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            length = self.buf[0] | self.buf[1] << 8 | self.buf[2] << 16
            if length > MAX_PACKET:
                raise MysqlError(f"bad packet: length {length} over the {MAX_PACKET}-byte limit")
            if len(self.buf) < 4 + length:
                break
            self.seq = self.buf[3]
            out.append(bytes(self.buf[4:4 + length]))
            del self.buf[:4 + length]
        return out


def packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


def _cstring(data: bytes, at: int, what: str) -> tuple[bytes, int]:
    end = data.find(b"\0", at)
    if end < 0:
        raise MysqlError(f"bad {what}: unterminated string")
    return data[at:end], end + 1


def parse_error(payload: bytes) -> ServerError:
    if len(payload) < 3:
        return ServerError(0, "", "truncated error packet")
    code = payload[1] | payload[2] << 8
    rest = payload[3:]
    state = ""
    if rest[:1] == b"#":
        state, rest = rest[1:6].decode("ascii", "replace"), rest[6:]
    return ServerError(code, state, rest[:160].decode("utf-8", "replace"))


def parse_handshake(payload: bytes) -> Handshake:
    """The server's first packet: protocol 10, or an ERR (host not allowed, too many connections)."""
    if payload[:1] == b"\xff":
        raise parse_error(payload)
    if payload[:1] != b"\x0a":
        raise MysqlError(f"bad greeting: protocol {payload[0] if payload else 'none'}, not 10")
    version, at = _cstring(payload, 1, "greeting")
    fixed = payload[at:at + 4 + 8 + 1 + 2]
    if len(fixed) < 15:
        raise MysqlError("bad greeting: truncated")
    salt = fixed[4:12]
    caps = struct.unpack_from("<H", fixed, 13)[0]
    at += 15
    plugin = NATIVE
    more = payload[at:at + 16]
    if len(more) == 16:
        caps |= struct.unpack_from("<H", more, 3)[0] << 16
        salt_len = more[5]
        at += 16
        if caps & CLIENT_SECURE_CONNECTION:
            take = max(13, salt_len - 8)
            part = payload[at:at + take]
            salt += part.rstrip(b"\0")
            at += take
        if caps & CLIENT_PLUGIN_AUTH and at < len(payload):
            name = payload[at:].split(b"\0", 1)[0]
            plugin = name.decode("ascii", "replace") or NATIVE
    return Handshake(version.decode("utf-8", "replace")[:60], caps, bytes(salt), plugin)


def scramble(password: str, salt: bytes) -> bytes:
    """mysql_native_password: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))); empty for no password."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password.encode()).digest()
    stage2 = hashlib.sha1(stage1).digest()
    mix = hashlib.sha1(salt[:20] + stage2).digest()
    return bytes(a ^ b for a, b in zip(stage1, mix, strict=True))


def login(user: str, password: str, database: str | None, hello: Handshake) -> bytes:
    """HandshakeResponse41 payload (sent with sequence number 1)."""
    caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION
    caps |= CLIENT_PLUGIN_AUTH & hello.capabilities
    if database:
        caps |= CLIENT_CONNECT_WITH_DB
    auth = scramble(password, hello.salt) if hello.plugin == NATIVE else b""
    out = struct.pack("<IIB23x", caps, MAX_PACKET, UTF8MB4) + user.encode() + b"\0"
    out += bytes([len(auth)]) + auth
    if database:
        out += database.encode() + b"\0"
    if caps & CLIENT_PLUGIN_AUTH:
        out += NATIVE.encode() + b"\0"
    return out


def auth_reply(payload: bytes, password: str) -> bytes | None:
    """After the login: None when it is OK; the scramble to send on an auth switch to
    mysql_native_password; ServerError on ERR; MysqlError for what this client cannot do."""
    kind = payload[:1]
    if kind == b"\x00":
        return None
    if kind == b"\xff":
        raise parse_error(payload)
    if kind == b"\xfe":
        name, at = _cstring(payload, 1, "auth switch")
        plugin = name.decode("ascii", "replace")[:40]
        if plugin != NATIVE:
            raise MysqlError(f"unsupported auth plugin {plugin!r} (only {NATIVE})")
        return scramble(password, payload[at:].rstrip(b"\0"))
    if kind == b"\x01":
        raise MysqlError("unsupported auth exchange (more data asked for)")
    raise MysqlError(f"bad auth reply: packet type {kind.hex() or 'empty'}")


def query(sql: str) -> bytes:
    return b"\x03" + sql.encode()


def lenenc(data: bytes, at: int) -> tuple[int | None, int]:
    """A length-encoded integer; None for NULL (0xfb)."""
    if at >= len(data):
        raise MysqlError("bad row: truncated")
    first = data[at]
    if first < 0xFB:
        return first, at + 1
    if first == 0xFB:
        return None, at + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if size is None or at + 1 + size > len(data):
        raise MysqlError("bad row: bad length")
    return int.from_bytes(data[at + 1:at + 1 + size], "little"), at + 1 + size


def parse_row(payload: bytes, columns: int) -> list[str]:
    values, at = [], 0
    for _ in range(columns):
        size, at = lenenc(payload, at)
        if size is None:
            values.append("NULL")
            continue
        if at + size > len(payload):
            raise MysqlError(f"bad row: value of {size} bytes past the packet's end")
        values.append(payload[at:at + size].decode("utf-8", "replace"))
        at += size
    return values


class QueryResult:
    """Collects a COM_QUERY reply packet by packet: `done` once the result is complete."""

    def __init__(self) -> None:
        self.columns: int | None = None
        self.state = "head"  # head, columns, rows
        self.defs_left = 0
        self.rows: list[list[str]] = []
        self.row_count = 0
        self.done = False

    def feed(self, payload: bytes) -> None:
        if not payload:
            raise MysqlError("bad query reply: empty packet")
        kind = payload[0]
        if self.state == "head":
            if kind == 0xFF:
                raise parse_error(payload)
            if kind == 0x00:  # OK: a statement without a result set
                self.columns, self.done = 0, True
                return
            count, _ = lenenc(payload, 0)
            if not count or count > 4096:
                raise MysqlError(f"bad query reply: {count} columns")
            self.columns, self.defs_left, self.state = count, count, "columns"
            return
        if self.state == "columns":
            if self.defs_left == 0:  # the EOF after the definitions
                if kind != 0xFE:
                    raise MysqlError("bad query reply: no EOF after the column definitions")
                self.state = "rows"
                return
            self.defs_left -= 1
            return
        if kind == 0xFF:
            raise parse_error(payload)
        if kind == 0xFE and len(payload) < 9:
            self.done = True
            return
        self.row_count += 1
        if len(self.rows) < MAX_ROWS:
            self.rows.append(parse_row(payload, self.columns or 0))
