"""Real servers for the login checks, each a child process on loopback with a throwaway
config and data directory: MariaDB, PostgreSQL, slapd, Dovecot (IMAP, POP3, both over TLS
too), vsftpd and FreeRADIUS. Never the system services: their own ports and directories.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.healthcheck.conftest import free_port, need, stop, wait_tcp

PASSWORD = "s3cret"
INTL_PASSWORD = "ｓ3\u00a0cret\u00ad"  # SASLprep (the server's too): fullwidth s, a no-break space, a soft hyphen


def _scratch(prefix: str, owner: str | None = None) -> Path:
    """A directory outside pytest's 0700 tree, so a server running as another user can use it."""
    d = Path(tempfile.mkdtemp(prefix=f"directord-{prefix}-"))
    d.chmod(0o755)
    if owner:
        entry = pwd.getpwnam(owner)
        os.chown(d, entry.pw_uid, entry.pw_gid)
    return d


def _popen(argv: list[str], log: Path, **kw) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)


def _ready(proc: subprocess.Popen, port: int, what: str, log: Path) -> None:
    try:
        wait_tcp(port, proc, what, timeout=30.0)
    except BaseException:
        print(log.read_text(errors="replace")[-3000:])
        stop(proc)
        raise


@contextlib.contextmanager
def mariadb() -> Iterator[int]:
    """mariadbd with database `app` (table t, one row 'alive'), user check/s3cret (reads app)
    and boss/s3cret (all privileges)."""
    server = need("mariadbd")
    d = _scratch("mariadb")
    try:
        subprocess.run([need("mariadb-install-db"), "--no-defaults", f"--datadir={d}/data", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True)
        (d / "init.sql").write_text(
            "CREATE DATABASE IF NOT EXISTS app;\nCREATE TABLE IF NOT EXISTS app.t (v VARCHAR(20));\n"
            "INSERT INTO app.t VALUES ('alive');\n"
            f"CREATE USER IF NOT EXISTS 'check'@'%' IDENTIFIED BY '{PASSWORD}';\n"
            "GRANT SELECT ON app.* TO 'check'@'%';\n"
            f"CREATE USER IF NOT EXISTS 'boss'@'%' IDENTIFIED BY '{PASSWORD}';\nGRANT ALL ON *.* TO 'boss'@'%';\n")
        port = free_port()
        proc = _popen([server, "--no-defaults", f"--datadir={d}/data", f"--socket={d}/sock", f"--port={port}",
                       "--bind-address=127.0.0.1", "--user=root", f"--init-file={d}/init.sql",
                       f"--pid-file={d}/pid", "--skip-log-bin", "--innodb-buffer-pool-size=16M"], d / "log")
        _ready(proc, port, "mariadbd", d / "log")
        try:
            time.sleep(0.3)  # the init file runs as the server starts listening
            yield port
        finally:
            stop(proc)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"postgresql's {name} is not installed (scripts/setup installs it)")
    return found[-1]


@contextlib.contextmanager
def postgresql() -> Iterator[int]:
    """postgres with database `app`; users chk (SCRAM-SHA-256, the default), md5user (md5)
    and plainuser (cleartext password), each with password s3cret, and intl (SCRAM) with
    INTL_PASSWORD."""
    d = _scratch("pgsql", owner="postgres")
    as_pg = {"user": "postgres", "group": "postgres", "extra_groups": []}
    try:
        subprocess.run([_pg_bin("initdb"), "-D", f"{d}/data", "-U", "postgres", "--auth-local=trust",
                        "--auth-host=scram-sha-256"], check=True, capture_output=True, **as_pg)
        hba = Path(d, "data", "pg_hba.conf")
        kept = [line for line in hba.read_text().splitlines() if not line.startswith("host")]
        hba.write_text("\n".join([*kept, "host all md5user 127.0.0.1/32 md5",
                                  "host all plainuser 127.0.0.1/32 password",
                                  "host all all 127.0.0.1/32 scram-sha-256", ""]))
        port = free_port()
        proc = _popen([_pg_bin("postgres"), "-D", f"{d}/data", "-p", str(port), "-k", str(d),
                       "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"], d / "log", **as_pg)
        _ready(proc, port, "postgres", d / "log")
        try:
            for sql in (f"CREATE USER chk PASSWORD '{PASSWORD}'", "CREATE DATABASE app OWNER chk",
                        f"SET password_encryption='md5'; CREATE USER md5user PASSWORD '{PASSWORD}'",
                        f"CREATE USER plainuser PASSWORD '{PASSWORD}'",
                        f"CREATE USER intl PASSWORD '{INTL_PASSWORD}'"):
                subprocess.run([_pg_bin("psql"), "-h", str(d), "-p", str(port), "-U", "postgres", "-qc", sql],
                               check=True, capture_output=True, **as_pg)
            yield port
        finally:
            stop(proc)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def slapd() -> Iterator[int]:
    """slapd with an mdb database dc=example,dc=test, rootdn cn=admin,dc=example,dc=test / s3cret."""
    server = need("slapd")
    d = _scratch("slapd")
    try:
        (d / "db").mkdir()
        conf = d / "slapd.conf"
        conf.write_text(f"include /etc/ldap/schema/core.schema\npidfile {d}/slapd.pid\nmodulepath /usr/lib/ldap\n"
                        "moduleload back_mdb\ndatabase mdb\nmaxsize 10485760\nsuffix \"dc=example,dc=test\"\n"
                        f"rootdn \"cn=admin,dc=example,dc=test\"\nrootpw {PASSWORD}\ndirectory {d}/db\n")
        (d / "base.ldif").write_text("dn: dc=example,dc=test\nobjectClass: dcObject\nobjectClass: organization\n"
                                     "o: Example\ndc: example\n")
        subprocess.run([need("slapadd"), "-f", str(conf), "-l", str(d / "base.ldif")], check=True,
                       capture_output=True)
        port = free_port()
        proc = _popen([server, "-d", "0", "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/"], d / "log")
        _ready(proc, port, "slapd", d / "log")
        try:
            yield port
        finally:
            stop(proc)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# Dovecot delays answers to a client address after a failed login (its anvil penalty, which
# grows with each failure): each failing test connects from an address of its own.
DOVECOT_ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")


@contextlib.contextmanager
def dovecot(cert: Path, key: Path) -> Iterator[dict[str, int]]:
    """Dovecot with user chk/s3cret (passwd-file); yields the ports by check type."""
    server = need("dovecot")
    d = _scratch("dovecot")
    try:
        for sub in ("run", "state"):
            (d / sub).mkdir()
        (d / "mail").mkdir(mode=0o777)
        (d / "mail").chmod(0o777)
        (d / "users").write_text(f"chk:{{PLAIN}}{PASSWORD}\n")
        ports = {kind: free_port() for kind in ("imap", "imaps", "pop", "pops")}
        conf = d / "dovecot.conf"
        conf.write_text(f"""auth_failure_delay = 0
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log
protocols = imap pop3
listen = {", ".join(DOVECOT_ADDRESSES)}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
mail_location = maildir:{d}/mail/%u
service imap-login {{
  inet_listener imap {{
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    port = {ports["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {ports["pop"]}
  }}
  inet_listener pop3s {{
    port = {ports["pops"]}
    ssl = yes
  }}
}}
""")
        proc = _popen([server, "-F", "-c", str(conf)], d / "out")
        for port in ports.values():
            _ready(proc, port, "dovecot", d / "out")
        try:
            yield ports
        finally:
            stop(proc)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def vsftpd() -> Iterator[int]:
    """vsftpd, anonymous only (any other user is refused with 530)."""
    server = need("vsftpd")
    d = _scratch("vsftpd")
    try:
        (d / "empty").mkdir()
        (d / "anon").mkdir(mode=0o555)
        (d / "anon" / "health.txt").write_text("ftp status: ok\n")
        port = free_port()
        conf = d / "vsftpd.conf"
        conf.write_text(f"listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nanonymous_enable=YES\n"
                        f"anon_root={d}/anon\nno_anon_password=YES\nlocal_enable=NO\nwrite_enable=NO\n"
                        f"secure_chroot_dir={d}/empty\nbackground=NO\nrun_as_launching_user=YES\n"
                        "xferlog_enable=NO\nseccomp_sandbox=NO\n")
        proc = _popen([server, str(conf)], d / "log")
        _ready(proc, port, "vsftpd", d / "log")
        try:
            yield port
        finally:
            stop(proc)
    finally:
        shutil.rmtree(d, ignore_errors=True)


RADIUS_SECRET = "testing123x"


@contextlib.contextmanager
def freeradius() -> Iterator[int]:
    """FreeRADIUS 3 (Debian's config, copied) answering only PAP for chk/s3cret, client
    127.0.0.0/8 with RADIUS_SECRET; yields the UDP auth port."""
    server = need("freeradius")
    d = _scratch("radius")
    try:
        shutil.copytree("/etc/freeradius/3.0", d / "raddb", symlinks=True)
        raddb = d / "raddb"
        port = free_port(kind=2)  # SOCK_DGRAM
        conf = (raddb / "radiusd.conf").read_text()
        for key, value in (("raddbdir", raddb), ("logdir", d), ("run_dir", d)):
            conf = "\n".join(f"{key} = {value}" if line.startswith(f"{key} =") else line for line in conf.splitlines())
        conf = conf.replace("proxy_requests  = yes", "proxy_requests  = no")
        conf = "\n".join("#" if line.strip() in ("user = freerad", "group = freerad") else line
                         for line in conf.splitlines())
        (raddb / "radiusd.conf").write_text(conf + "\n")
        for extra in ("sites-enabled/inner-tunnel", "mods-enabled/eap"):
            (raddb / extra).unlink(missing_ok=True)
        (raddb / "sites-enabled" / "default").unlink()
        (raddb / "sites-enabled" / "default").write_text(
            "server default {\n listen {\n  type = auth\n  ipaddr = 127.0.0.1\n"
            f"  port = {port}\n }}\n authorize {{\n  files\n  pap\n }}\n"
            " authenticate {\n  Auth-Type PAP {\n   pap\n  }\n }\n}\n")
        (raddb / "clients.conf").write_text(f"client lo {{\n ipaddr = 127.0.0.0/8\n secret = {RADIUS_SECRET}\n}}\n")
        (raddb / "mods-config" / "files" / "authorize").write_text(
            f'chk Cleartext-Password := "{PASSWORD}"\n\tReply-Message = "hello chk"\n')
        log = d / "out"
        proc = _popen([server, "-X", "-d", str(raddb)], log)
        deadline = time.monotonic() + 30
        while b"Ready to process requests" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                print(log.read_text(errors="replace")[-3000:])
                stop(proc)
                pytest.fail("freeradius did not start")
            time.sleep(0.1)
        try:
            yield port
        finally:
            stop(proc)
    finally:
        shutil.rmtree(d, ignore_errors=True)
