"""ldirectord service=mysql|pgsql|ldap|imap|imaps|pop|pops|ftp|radius with login=, passwd=,
database=, request=, receive= and secret=: imported as the matching login check, exactly."""

from __future__ import annotations

import pytest

from director.importer.ldirectord import convert
from tests.importer.helpers import imported, notes


def one(tmp_path, body: str, head: str = ""):
    path = tmp_path / "ld.cf"
    path.write_text(head + "virtual=192.0.2.40:1000\n    real=10.0.0.1:1000 masq\n" + body)
    conv = convert(str(path))
    config, _ = imported(conv, "ldirectord")
    return config.virtual_servers[0].check, notes(conv)


def test_mysql_with_login_database_and_query(tmp_path):
    check, found = one(tmp_path, '    service=mysql\n    checktype=negotiate\n    login="monitor"\n'
                       '    passwd="m0n1t0r"\n    database="mysql"\n    request="select (1) from user"\n')
    assert (check.type, check.login, check.passwd, check.database, check.request, check.receive) == (
        "mysql", "monitor", "m0n1t0r", "mysql", "select (1) from user", None)
    assert check.timeout == 30.0 and not found


def test_globals_are_defaults_and_http_receive_does_not_leak_into_sql(tmp_path):
    check, found = one(tmp_path, "    service=pgsql\n    database=app\n",
                       head='login="readuser"\npasswd="pw"\nreceive="Test Page"\nnegotiatetimeout=4\n')
    assert (check.type, check.login, check.passwd, check.database, check.receive, check.timeout) == (
        "pgsql", "readuser", "pw", "app", None, 4.0)
    assert not found


def test_ldap_request_and_receive(tmp_path):
    check, _ = one(tmp_path, '    service=ldap\n    request="dc=example,dc=test"\n    receive="o: Example"\n')
    assert (check.type, check.login, check.request, check.receive) == ("ldap", None, "dc=example,dc=test", "o: Example")


@pytest.mark.parametrize("service", ["imap", "imaps", "pop", "pops", "ftp"])
def test_mail_and_ftp_logins(tmp_path, service):
    check, found = one(tmp_path, f'    service={service}\n    login="chk"\n    passwd="pw"\n    database="x"\n')
    assert (check.type, check.login, check.passwd, check.database) == (service, "chk", "pw", None)
    assert not found


def test_radius_with_secret(tmp_path):
    check, found = one(tmp_path, '    protocol=udp\n    service=radius\n    login="readuser"\n    passwd="pw"\n'
                       '    secret="somesecret"\n    checktimeout=1\n')
    assert (check.type, check.login, check.passwd, check.secret, check.timeout) == (
        "radius", "readuser", "pw", "somesecret", 1.0)
    assert not found


def test_what_is_not_carried_over_is_flagged(tmp_path):
    _, found = one(tmp_path, '    service=radius\n    login="u"\n')
    assert "service=radius needs login= and secret=" in found[("ld.cf", 3)]
    check, found = one(tmp_path, '    service=ftp\n    request="file.txt"\n')
    assert "request= without login=" in found[("ld.cf", 4)] and check.request is None


def test_ftp_fetch(tmp_path):
    check, found = one(tmp_path, '    service=ftp\n    login="anonymous"\n    passwd="x@y"\n    request="health.txt"\n'
                       '    receive="ok"\n')
    assert (check.type, check.login, check.request, check.receive) == ("ftp", "anonymous", "health.txt", "ok")
    assert not found


def test_connect_checktype_stays_a_connect(tmp_path):
    check, _ = one(tmp_path, '    service=mysql\n    checktype=connect\n    login="u"\n')
    assert check.type == "tcp" and check.login is None
