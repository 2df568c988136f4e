"""The login checks' parsers (mysql_wire, pgsql_wire, ldap_ber, radius_wire) and probes on
hostile input: lying lengths, huge BER lengths, bad RADIUS attribute lengths, lines without
an end. Each is a verdict with a reason (or the parser's own error), never another exception,
never past the check's deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import struct

from hypothesis import given
from hypothesis import strategies as st

from director.config.model import CheckConfig
from healthcheck import ldap_ber as lb
from healthcheck import mysql_wire as mw
from healthcheck import pgsql_wire as pw
from healthcheck import radius_wire as rw
from healthcheck.ftp import passive_port
from healthcheck.probes import probe
from healthcheck.result import Target
from tests.fuzz.mutate import budget, chunked, drawn, fuzzed, mutate_bytes, pick
from tests.healthcheck.adversaries import serve

# --- seeds: what real servers send (the layouts MariaDB 10.11, PostgreSQL 15, slapd 2.5 and
# FreeRADIUS 3.2 answered the tests in tests/healthcheck/test_login_checks.py with) ----------

SALT = b"abcdefgh12345678ijkl"
HANDSHAKE = (b"\x0a" + b"5.5.5-10.11.19-MariaDB\0" + struct.pack("<I", 7) + SALT[:8] + b"\0"
             + struct.pack("<HBHH", 0xF7FE, 45, 2, 0x81BF) + bytes([21]) + b"\0" * 6 + struct.pack("<I", 0x1D)
             + SALT[8:] + b"\0" + b"mysql_native_password\0")
MYSQL_OK = b"\x00\x00\x00\x02\x00\x00\x00"
MYSQL_ERR = b"\xff\x15\x04#28000Access denied for user 'check'@'localhost' (using password: YES)"
MYSQL_SWITCH = b"\xfemysql_native_password\0" + SALT + b"\0"
MYSQL_RESULT = [b"\x01", b"\x03def\x03app\x01t\x01t\x01v\x01v\x0c-\x00P\x00\x00\x00\xfd\x00\x00\x00\x00\x00",
                b"\xfe\x00\x00\x22\x00", b"\x05alive", b"\xfe\x00\x00\x22\x00"]
MYSQL_SEEDS = [mw.packet(0, HANDSHAKE), mw.packet(2, MYSQL_OK), mw.packet(2, MYSQL_ERR), mw.packet(2, MYSQL_SWITCH),
               b"".join(mw.packet(i + 1, p) for i, p in enumerate(MYSQL_RESULT))]


def _pg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack(">I", len(body) + 4) + body


PG_SEEDS = [
    _pg(b"R", struct.pack(">I", 10) + b"SCRAM-SHA-256\0\0"),
    _pg(b"R", struct.pack(">I", 11) + b"r=abcdefSERVER,s=c2FsdHNhbHQ=,i=4096"),
    _pg(b"R", struct.pack(">I", 5) + b"salt") + _pg(b"R", struct.pack(">I", 0)),
    _pg(b"E", b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"chk\"\0\0"),
    _pg(b"S", b"server_version\x0015.8\0") + _pg(b"K", b"\0\0\0\1\0\0\0\2") + _pg(b"Z", b"I"),
    _pg(b"T", b"\0\1?column?\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0")
    + _pg(b"D", b"\0\1\0\0\0\5alive") + _pg(b"C", b"SELECT 1\0") + _pg(b"Z", b"I"),
]

LDAP_SEEDS = [
    lb.tlv(0x30, lb.integer(1) + lb.tlv(lb.BIND_RESPONSE, lb.integer(0, 0x0A) + lb.octets("") + lb.octets(""))),
    lb.tlv(0x30, lb.integer(1) + lb.tlv(lb.BIND_RESPONSE, lb.integer(49, 0x0A) + lb.octets("") + lb.octets(""))),
    lb.tlv(0x30, lb.integer(2) + lb.tlv(lb.SEARCH_ENTRY, lb.octets("dc=example,dc=test") + lb.tlv(0x30, lb.tlv(
        0x30, lb.octets("o") + lb.tlv(0x31, lb.octets("Example")))))),
    lb.tlv(0x30, lb.integer(2) + lb.tlv(lb.SEARCH_DONE, lb.integer(32, 0x0A) + lb.octets("dc=test") + lb.octets(""))),
    lb.tlv(0x30, lb.integer(0) + lb.tlv(lb.EXTENDED_RESPONSE, lb.integer(52, 0x0A) + lb.octets("") + lb.octets("bye"))),
]

SECRET = b"testing123x"
REQUEST = rw.access_request("chk", "s3cret", SECRET, ident=7, authenticator=b"A" * 16)


def _radius(code: int, attrs: bytes) -> bytes:
    head = struct.pack(">BBH", code, 7, 20 + len(attrs))
    return head + hashlib.md5(head + REQUEST.authenticator + attrs + SECRET).digest() + attrs


RADIUS_SEEDS = [_radius(rw.ACCESS_ACCEPT, b"\x12\x0bhello chk"), _radius(rw.ACCESS_REJECT, b""),
                _radius(rw.ACCESS_CHALLENGE, b"\x18\x06abcd" + b"\x50\x12" + b"\0" * 16)]


# --- the sans-IO parsers -------------------------------------------------------------------


def test_seeds_parse():
    framer = mw.Framer()
    assert mw.parse_handshake(framer.feed(MYSQL_SEEDS[0])[0]).plugin == "mysql_native_password"
    assert pw.Framer().feed(PG_SEEDS[5])[1].kind == "D"
    assert lb.parse_result(lb.Framer().feed(LDAP_SEEDS[1])[0].body).code == 49
    assert "o: Example" in lb.entry_text(lb.Framer().feed(LDAP_SEEDS[2])[0].body)
    reply = rw.parse_reply(RADIUS_SEEDS[0], REQUEST, SECRET)
    assert reply is not None and reply.message == "hello chk"


def _mysql(data: bytes) -> None:
    try:
        framer = mw.Framer()
        packets = framer.feed(data)
        for payload in packets:
            for step in (mw.parse_handshake, lambda p: mw.auth_reply(p, "pw")):
                try:
                    step(payload)
                except mw.ServerError as exc:
                    assert exc.reason
            result = mw.QueryResult()
            for payload in packets:
                if result.done:
                    break
                try:
                    result.feed(payload)
                except mw.ServerError:
                    break
            assert len(result.rows) <= mw.MAX_ROWS
    except mw.MysqlError as exc:
        assert str(exc)


@budget(1500)
@given(fuzzed(MYSQL_SEEDS))
def test_mysql_packets(data: bytes) -> None:
    _mysql(data)


def _pgsql(data: bytes) -> None:
    try:
        for message in pw.Framer().feed(data):
            assert len(message.body) <= pw.MAX_MESSAGE
            if message.kind == "D":
                pw.data_row(message.body)
            elif message.kind == "E":
                assert pw.ServerError(pw.error_fields(message.body)).reason
            elif message.kind == "R":
                pw.auth_code(message.body)
                scram = pw.Scram("pw", nonce="abcdef")
                scram.final(message.body[4:])
                scram.verify(message.body[4:])
    except pw.PgsqlError as exc:
        assert str(exc)


@budget(1500)
@given(fuzzed(PG_SEEDS))
def test_pgsql_messages(data: bytes) -> None:
    _pgsql(data)


def _ldap(data: bytes) -> None:
    try:
        for message in lb.Framer().feed(data):
            if message.op == lb.SEARCH_ENTRY:
                lb.entry_text(message.body)
            else:
                assert lb.parse_result(message.body).reason
    except lb.LdapError as exc:
        assert str(exc)


@budget(1500)
@given(fuzzed(LDAP_SEEDS))
def test_ldap_ber(data: bytes) -> None:
    _ldap(data)


@budget(1500)
@given(fuzzed(RADIUS_SEEDS))
def test_radius_replies(data: bytes) -> None:
    try:
        reply = rw.parse_reply(data, REQUEST, SECRET)
    except rw.RadiusError as exc:
        assert str(exc)
        return
    assert reply is None or reply.code in rw.CODE_NAMES


def test_huge_lengths_are_refused_before_they_are_read():
    for feed, data, error in (
        (mw.Framer().feed, b"\xff\xff\xff\x00", mw.MysqlError),
        (pw.Framer().feed, b"R\x7f\xff\xff\xff", pw.PgsqlError),
        (lb.Framer().feed, b"\x30\x84\x7f\xff\xff\xff", lb.LdapError),
        (lb.Framer().feed, b"\x30\x80", lb.LdapError),
    ):
        try:
            feed(data)
        except error as exc:
            assert "length" in str(exc)
        else:
            raise AssertionError(f"{data!r} was accepted")
    bad_attr = bytearray(RADIUS_SEEDS[0])
    bad_attr[21] = 200  # the Reply-Message claims 200 bytes
    try:
        rw.parse_reply(bytes(bad_attr), REQUEST, SECRET)
    except rw.RadiusError as exc:
        assert "bad length" in str(exc)
    else:
        raise AssertionError("a lying attribute length was accepted")


def test_scram_iteration_count_is_capped():
    scram = pw.Scram("pw", nonce="abc")
    try:
        scram.final(b"r=abcXYZ,s=c2FsdA==,i=999999999")
    except pw.PgsqlError as exc:
        assert "iterations" in str(exc)
    else:
        raise AssertionError("a billion PBKDF2 rounds were accepted")


# --- the probes against a hostile server -----------------------------------------------------

TIMEOUT = 0.3
STREAM_SEEDS = {"mysql": MYSQL_SEEDS, "pgsql": PG_SEEDS, "ldap": LDAP_SEEDS,
                "imap": [b"* OK ready\r\n", b"a1 OK done\r\n", b"* BYE\r\n"],
                "pop": [b"+OK ready\r\n", b"-ERR no\r\n"],
                "ftp": [b"220-hello\r\n220 ready\r\n", b"331 pw\r\n", b"230 in\r\n", b"530 no\r\n"]}
LOGIN = {"login": "chk", "passwd": "pw"}


async def _against(kind: str, chunks: list[bytes], close: bool, options: dict) -> None:
    async def handler(reader, writer):
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)
        if not close:
            await asyncio.sleep(3600)

    async with serve(handler) as port:
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await probe(Target("127.0.0.1", port), CheckConfig(type=kind, timeout=TIMEOUT, **options))
        took = loop.time() - started
    assert result.reason
    assert not result.reason.startswith("probe error"), result.reason
    assert took < TIMEOUT + 0.25, (took, result)


@st.composite
def sessions(draw: st.DrawFn) -> tuple[str, list[bytes], bool, dict]:
    choose = drawn(draw)
    kind = pick(choose, sorted(STREAM_SEEDS))
    seeds = STREAM_SEEDS[kind]
    data = b"".join(mutate_bytes(pick(choose, seeds), choose, seeds) for _ in range(choose(1, 3)))
    options = dict(LOGIN) if choose(0, 1) else {}
    if kind in ("mysql", "pgsql") and options and choose(0, 1):
        options["request"] = "SELECT 1"
    return kind, chunked(data, choose), bool(choose(0, 1)), options


@budget(150)
@given(sessions())
def test_probes_give_a_verdict_within_the_deadline(session) -> None:
    asyncio.run(_against(*session))


def test_a_line_without_an_end():
    for kind in ("imap", "pop", "ftp"):
        asyncio.run(_against(kind, [b"x" * 10000], False, {}))


async def _radius_against(replies: list[bytes]) -> str:
    loop = asyncio.get_running_loop()

    class Responder(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            for reply in replies:  # answers carry the request's identifier, as a real server's
                self.transport.sendto(reply[:1] + data[1:2] + reply[2:], addr)

    transport, _ = await loop.create_datagram_endpoint(Responder, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        started = loop.time()
        result = await probe(Target("127.0.0.1", port), CheckConfig(type="radius", timeout=TIMEOUT, secret="x",
                                                                    login="u", passwd="p"))
        assert loop.time() - started < TIMEOUT + 0.25
        assert not result.ok and not result.reason.startswith("probe error"), result.reason
        return result.reason
    finally:
        transport.close()


@budget(100)
@given(st.lists(fuzzed(RADIUS_SEEDS, max_size=64), min_size=1, max_size=3))
def test_radius_probe_on_hostile_replies(replies: list[bytes]) -> None:
    asyncio.run(_radius_against(replies))


def test_radius_reply_signed_with_another_secret():
    assert "bad Response Authenticator" in asyncio.run(_radius_against([RADIUS_SEEDS[0]]))


@budget(800)
@given(st.one_of(st.text(max_size=80), st.sampled_from([
    "Entering Passive Mode (127,0,0,1,200,10)", "Entering Extended Passive Mode (|||51234|)",
    "(999,999,999,999,999,999)", "(|||99999|)", "(!!!1!)"])), st.sampled_from([227, 229, 200]))
def test_ftp_passive_replies(text: str, code: int) -> None:
    port = passive_port(code, text)
    assert port is None or 0 < port < 65536


def test_a_reply_message_authenticator_is_verified():
    attrs = b"\x50\x12" + b"\0" * 16 + b"\x12\x04ok"
    head = struct.pack(">BBH", rw.ACCESS_ACCEPT, 7, 20 + len(attrs))
    mac = hmac.digest(SECRET, head + REQUEST.authenticator + attrs, "md5")
    signed = attrs[:2] + mac + attrs[18:]
    good = head + hashlib.md5(head + REQUEST.authenticator + signed + SECRET).digest() + signed
    assert rw.parse_reply(good, REQUEST, SECRET).code == rw.ACCESS_ACCEPT
    forged = attrs[:2] + b"\1" * 16 + attrs[18:]
    bad = head + hashlib.md5(head + REQUEST.authenticator + forged + SECRET).digest() + forged
    try:
        rw.parse_reply(bad, REQUEST, SECRET)
    except rw.RadiusError as exc:
        assert "Message-Authenticator" in str(exc)
    else:
        raise AssertionError("a wrong Message-Authenticator was accepted")


@budget(500)
@given(st.text(max_size=40))
def test_saslprep_never_raises(text: str) -> None:
    assert isinstance(pw.saslprep(text), str)
