"""The login checks against the real servers (MariaDB, PostgreSQL, slapd, Dovecot, vsftpd,
FreeRADIUS), each started by the test on loopback: up when the server says yes, down with
the reason a person acts on when it says no, speaks something else or is not there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest

from director.config.load import parse_config, parse_toml
from director.config.model import CheckConfig
from healthcheck import probe
from healthcheck.result import ProbeResult, Target
from tests.healthcheck import login_servers as ls
from tests.healthcheck.conftest import free_port, run

PW = ls.PASSWORD


def check(target: tuple[str, int] | int, **options) -> ProbeResult:
    address, port = target if isinstance(target, tuple) else ("127.0.0.1", target)
    options.setdefault("timeout", 5.0)
    return run(probe(Target(address, port), CheckConfig(**options)))


def up(result: ProbeResult, reason: str) -> None:
    assert result.ok, result.reason
    assert reason in result.reason


def down(result: ProbeResult, reason: str) -> None:
    assert not result.ok, result.reason
    assert reason in result.reason, result.reason


@pytest.fixture(scope="module")
def mariadb():
    with ls.mariadb() as port:
        yield port


@pytest.fixture(scope="module")
def postgresql():
    with ls.postgresql() as port:
        yield port


@pytest.fixture(scope="module")
def slapd():
    with ls.slapd() as port:
        yield port


@pytest.fixture(scope="module")
def dovecot(tls_cert):
    with ls.dovecot(*tls_cert) as ports:
        yield ports


@pytest.fixture(scope="module")
def vsftpd():
    with ls.vsftpd() as port:
        yield port


@pytest.fixture(scope="module")
def freeradius():
    with ls.freeradius() as port:
        yield port


# --- mysql ---------------------------------------------------------------------------------


def test_mysql_greeting_login_and_query(mariadb):
    up(check(mariadb, type="mysql"), "MariaDB")
    up(check(mariadb, type="mysql", login="check", passwd=PW), "logged in")
    up(check(mariadb, type="mysql", login="check", passwd=PW, database="app"), "logged in")
    up(check(mariadb, type="mysql", login="check", passwd=PW, database="app", request="SELECT v FROM t"),
       "returned 1 row")
    up(check(mariadb, type="mysql", login="check", passwd=PW, database="app", request="SELECT v FROM t",
             receive="^ali"), "matched")


def test_mysql_failures(mariadb, postgresql):
    down(check(mariadb, type="mysql", login="check", passwd="wrong"), "access denied (mysql 1045")
    down(check(mariadb, type="mysql", login="nobody", passwd=PW), "access denied")
    down(check(mariadb, type="mysql", login="check", passwd=PW, database="nope"), "access denied to database")
    down(check(mariadb, type="mysql", login="boss", passwd=PW, database="nope"), "unknown database (mysql 1049")
    db = {"type": "mysql", "login": "check", "passwd": PW, "database": "app"}
    down(check(mariadb, **db, request="SELECT v FROM t WHERE 0"), "query returned no rows")
    down(check(mariadb, **db, request="SELECT v FROM t", receive="dead"), "did not match")
    down(check(mariadb, **db, request="SELECT v FROM missing"), "unknown table")
    down(check(free_port(), type="mysql"), "connection refused")
    # a PostgreSQL server never speaks first: a timeout while waiting for the greeting
    down(check(postgresql, type="mysql", timeout=0.5), "timeout after 0.5s waiting for greeting")


def test_mysql_password_from_a_file(mariadb, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PW + "\n")
    up(check(mariadb, type="mysql", login="check", passwd_file=str(secret)), "logged in")
    secret.write_text("wrong\n")
    os.utime(secret, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime even on coarse clocks
    down(check(mariadb, type="mysql", login="check", passwd_file=str(secret)), "access denied")
    down(check(mariadb, type="mysql", login="check", passwd_file=str(tmp_path / "none")), "cannot read passwd_file")


# --- pgsql ---------------------------------------------------------------------------------


def test_pgsql_without_login_and_with_each_password_method(postgresql):
    up(check(postgresql, type="pgsql"), "SSLRequest")
    for user in ("chk", "md5user", "plainuser"):  # SCRAM-SHA-256, md5, cleartext
        up(check(postgresql, type="pgsql", login=user, passwd=PW, database="app"), f"logged in as {user}")
    up(check(postgresql, type="pgsql", login="chk", passwd=PW, database="app", request="SELECT 'alive'",
             receive="^alive$"), "matched")
    up(check(postgresql, type="pgsql", login="chk", passwd=PW, database="app",
             request="SELECT generate_series(1, 3)"), "returned 3 rows")


def test_pgsql_scram_prepares_the_password_as_the_server_does(postgresql):
    up(check(postgresql, type="pgsql", login="intl", passwd=ls.INTL_PASSWORD, database="app"), "logged in")
    up(check(postgresql, type="pgsql", login="intl", passwd="s3 cret", database="app"), "logged in")  # prepared
    down(check(postgresql, type="pgsql", login="intl", passwd="s3cret", database="app"), "access denied")


def test_pgsql_failures(postgresql, mariadb):
    for user in ("chk", "md5user", "plainuser"):
        down(check(postgresql, type="pgsql", login=user, passwd="wrong", database="app"), "access denied (pgsql 28P01")
    down(check(postgresql, type="pgsql", login="chk", passwd=PW, database="nope"), "unknown database (pgsql 3D000")
    db = {"type": "pgsql", "login": "chk", "passwd": PW, "database": "app"}
    down(check(postgresql, **db, request="SELECT 1 WHERE false"), "query returned no rows")
    down(check(postgresql, **db, request="SELECT 'x'", receive="y"), "did not match")
    down(check(postgresql, **db, request="SELECT * FROM missing"), "unknown table (pgsql 42P01")
    down(check(free_port(), type="pgsql"), "connection refused")
    down(check(mariadb, type="pgsql"), "bad greeting")  # MariaDB greets first: not S or N
    down(check(mariadb, type="pgsql", login="chk", passwd=PW), "bad message")


# --- ldap ----------------------------------------------------------------------------------

ADMIN = "cn=admin,dc=example,dc=test"


def test_ldap_binds_and_reads(slapd):
    up(check(slapd, type="ldap"), "anonymous bind")
    up(check(slapd, type="ldap", login=ADMIN, passwd=PW), f"bound as {ADMIN}")
    up(check(slapd, type="ldap", request="dc=example,dc=test"), "read")
    up(check(slapd, type="ldap", login=ADMIN, passwd=PW, request="dc=example,dc=test", receive="o: Example"),
       "matched")


def test_ldap_failures(slapd, vsftpd):
    down(check(slapd, type="ldap", login=ADMIN, passwd="wrong"), "invalid credentials (ldap 49)")
    down(check(slapd, type="ldap", request="dc=missing,dc=test"), "no such object (ldap 32)")
    down(check(slapd, type="ldap", request="dc=example,dc=test", receive="o: Other"), "did not match")
    down(check(free_port(), type="ldap"), "connection refused")
    down(check(vsftpd, type="ldap"), "bad")  # an FTP greeting is no BER


# --- imap / pop (and over TLS) -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["imap", "imaps", "pop", "pops"])
def test_mail_greeting_and_login(dovecot, kind):
    up(check(dovecot[kind], type=kind), "greeting")
    up(check(dovecot[kind], type=kind, login="chk", passwd=PW), "logged in as chk")


@pytest.mark.parametrize("kind", ["imap", "imaps", "pop", "pops"])
def test_mail_wrong_password(dovecot, kind):
    address = ls.DOVECOT_ADDRESSES[1 + ["imap", "imaps", "pop", "pops"].index(kind)]
    down(check((address, dovecot[kind]), type=kind, login="chk", passwd="wrong"), "login refused")


def test_mail_other_servers(dovecot, vsftpd):
    down(check(dovecot["pop"], type="imap"), "is not an IMAP greeting")
    down(check(dovecot["imap"], type="pop"), "is not a POP3 greeting")
    down(check(vsftpd, type="imap"), "is not an IMAP greeting")
    down(check(dovecot["imap"], type="imaps"), "TLS error")
    down(check(free_port(), type="pop"), "connection refused")


# --- ftp -----------------------------------------------------------------------------------


def test_ftp(vsftpd, dovecot):
    up(check(vsftpd, type="ftp"), "FTP greeting")
    up(check(vsftpd, type="ftp", login="anonymous", passwd="check@example.test"), "logged in as anonymous")
    down(check(vsftpd, type="ftp", login="bob", passwd="x"), "login refused: '530")
    anon = {"type": "ftp", "login": "anonymous", "passwd": "check@example.test"}
    up(check(vsftpd, **anon, request="health.txt"), "fetched 'health.txt' (15 bytes)")
    up(check(vsftpd, **anon, request="health.txt", receive="status: ok"), "matched")
    down(check(vsftpd, **anon, request="health.txt", receive="down"), "did not match")
    down(check(vsftpd, **anon, request="missing.txt"), "cannot fetch 'missing.txt': '550")
    down(check(dovecot["pop"], type="ftp"), "is not an FTP reply")
    down(check(free_port(), type="ftp"), "connection refused")


# --- radius --------------------------------------------------------------------------------


def test_radius(freeradius):
    radius = {"type": "radius", "secret": ls.RADIUS_SECRET}
    up(check(freeradius, **radius, login="chk", passwd=PW), "Access-Accept for chk: 'hello chk'")
    down(check(freeradius, **radius, login="chk", passwd="wrong"), "access rejected for chk")
    down(check(freeradius, **radius, login="nobody", passwd=PW), "access rejected for nobody")
    # FreeRADIUS drops a request whose Message-Authenticator does not verify: silence until the deadline
    down(check(freeradius, type="radius", secret="not-the-secret", login="chk", passwd=PW, timeout=1.5),
         "timeout after 1.5s waiting for the RADIUS reply")
    down(check(free_port(2), **radius, login="chk", passwd=PW), "connection refused (ICMP port unreachable)")


def test_radius_against_a_udp_echo():
    """Something else on the port: a UDP echo sends the Access-Request back."""

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            self.transport.sendto(data, addr)

    async def scenario():
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        try:
            port = transport.get_extra_info("sockname")[1]
            return await probe(Target("127.0.0.1", port), CheckConfig(type="radius", secret="s", login="u", passwd="p"))
        finally:
            transport.close()

    down(run(scenario()), "bad RADIUS reply: code 1 to an Access-Request")


# --- through the config loader -------------------------------------------------------------


def test_a_loaded_config_runs_the_check(mariadb, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PW)
    config = parse_config(parse_toml(f"""
[[virtual_server]]
name = "db"
address = "192.0.2.10"
port = {mariadb}
[virtual_server.check]
type = "mysql"
login = "check"
passwd_file = "{secret}"
database = "app"
request = "SELECT v FROM t"
receive = "alive"
timeout = "5s"
interval = "5s"
[[virtual_server.real_server]]
address = "127.0.0.1"
""", "test.toml"))
    vs = config.virtual_servers[0]
    assert vs.check.passwd_file == str(secret)
    up(run(probe(Target("127.0.0.1", mariadb), vs.check)), "matched")
    up(run(probe(Target("127.0.0.1", mariadb), dataclasses.replace(vs.check, receive=None))), "returned 1 row")


# --- ldirectord.cf -> directord import -> directord probe, against the real server -----------


def test_an_imported_ldirectord_pgsql_check_probes_the_real_server(postgresql, tmp_path):
    source = tmp_path / "ldirectord.cf"
    source.write_text(f"""checktimeout=5
virtual=192.0.2.30:{postgresql}
    real=127.0.0.1:{postgresql} masq
    service=pgsql
    checktype=negotiate
    negotiatetimeout=5
    login="chk"
    passwd="{PW}"
    database="app"
    request="SELECT 'alive'"
""")
    out = tmp_path / "directord.toml"
    cli = [sys.executable, "-m", "director.cli"]
    imported = subprocess.run([*cli, "import", "--from", "ldirectord", str(source), "-o", str(out)],
                              capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0 and not imported.stderr, imported.stderr
    out.chmod(0o600)
    probed = subprocess.run([*cli, "probe", "--json", "-c", str(out)], capture_output=True, text=True, timeout=60)
    result = json.loads(probed.stdout)["results"][0]
    assert probed.returncode == 0 and result["up"], probed.stdout
    assert result["check"] == "pgsql" and "returned 1 row" in result["reason"]
    out.write_text(out.read_text().replace(f'passwd = "{PW}"', 'passwd = "wrong"'))
    probed = subprocess.run([*cli, "probe", "--json", "-c", str(out)], capture_output=True, text=True, timeout=60)
    assert probed.returncode == 1 and "access denied" in json.loads(probed.stdout)["results"][0]["reason"]
