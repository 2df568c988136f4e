"""The login checks' keys: read, refused where they cannot work, warned about when a password
sits in a file others can read."""

from __future__ import annotations

import pytest

from director.config.advice import config_warnings
from director.config.load import ConfigError, load_config, parse_config, parse_toml

HEAD = """
[[virtual_server]]
name = "db"
address = "192.0.2.10"
port = 3306
[[virtual_server.real_server]]
address = "10.0.0.11"
[virtual_server.check]
"""


def load(check: str):
    return parse_config(parse_toml(HEAD + check, "t.toml"), "t.toml")


def error(check: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(check)
    return str(info.value)


def test_keys_are_read():
    check = load('type = "pgsql"\nlogin = "chk"\npasswd = "pw"\ndatabase = "app"\nrequest = "SELECT 1"\n'
                 'receive = "^1$"\n').virtual_servers[0].check
    assert (check.type, check.login, check.passwd, check.database, check.request, check.receive) == (
        "pgsql", "chk", "pw", "app", "SELECT 1", "^1$")
    radius = load('type = "radius"\nlogin = "u"\nsecret_file = "/etc/directord/radius.secret"\n')
    assert radius.virtual_servers[0].check.secret_file == "/etc/directord/radius.secret"


@pytest.mark.parametrize(("check", "reason"), [
    ('type = "imap"\nlogin = "a\\r\\nb"\n', "check.login: must not contain control characters"),
    ('type = "mysql"\nlogin = "u"\npasswd = "p"\npasswd_file = "/f"\n', "give passwd or passwd_file, not both"),
    ('type = "mysql"\nrequest = "SELECT 1"\n', "check.request: needs login"),
    ('type = "ftp"\nrequest = "f.txt"\n', "check.request: needs login"),
    ('type = "ftp"\ndatabase = "x"\n', 'check.database: applies only to mysql/pgsql checks, not type "ftp"'),
    ('type = "tcp"\nlogin = "x"\n', 'applies only to mysql/pgsql/ldap/imap/imaps/pop/pops/ftp/radius checks'),
    ('type = "radius"\nlogin = "u"\nsecret = "s"\nsecret_file = "/f"\n', "give secret or secret_file"),
    ('type = "ldap"\nreceive = "(a+)+$"\n', "check.receive:"),
    ('type = "pop"\nlogin = "u"\npasswd_file = "pw.txt"\n', "check.passwd_file: must be an absolute path"),
])
def test_refused(check, reason):
    assert reason in error(check)


def test_inline_password_in_a_readable_file_is_warned(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text(HEAD + 'type = "mysql"\nlogin = "u"\npasswd = "p"\n')
    path.chmod(0o644)
    messages = [p.reason for p in config_warnings(load_config(str(path)))]
    assert any("other users can read" in m for m in messages)
    path.chmod(0o600)
    assert not any("other users can read" in p.reason for p in config_warnings(load_config(str(path))))


def test_radius_without_a_secret_is_warned():
    messages = [p.reason for p in config_warnings(load('type = "radius"\nlogin = "u"\n'))]
    assert any("radius check needs login and secret" in m for m in messages)
