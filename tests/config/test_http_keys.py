"""The HTTP depth keys of a check: what they load as, and one clear line per mistake."""

from __future__ import annotations

from typing import Any

import pytest

from director.config.load import ConfigError, parse_config
from director.config.model import HttpUrl


def config(**check: Any) -> dict[str, Any]:
    return {"virtual_server": [{"name": "web", "address": "192.0.2.1", "port": 80,
                                "real_server": [{"address": "10.0.0.1"}], "check": {"type": "http", **check}}]}


def errors(**check: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(config(**check), "f")
    return [line.removeprefix('f: virtual_server "web".check.') for line in info.value.lines]


def test_every_key_loads() -> None:
    check = parse_config(config(headers={"X-A": "b", "Accept-Language": "en"}, http_version="1.0",
                                http_user="probe", http_password="s3cret", expect_body="ok", regex_no_match=True,
                                digest="FF20AD2481F97B1754EF3E12ECD3A9CC")).virtual_servers[0].check
    assert check.headers == (("X-A", "b"), ("Accept-Language", "en"))
    assert (check.http_version, check.http_user, check.http_password) == ("1.0", "probe", "s3cret")
    assert (check.regex_no_match, check.digest) == (True, "ff20ad2481f97b1754ef3e12ecd3a9cc")
    urls = parse_config(config(urls=[{"path": "/a", "expect_status": [200, "300-399"]},
                                     {"path": "/b", "host": "site.example", "expect_body": "x",
                                      "regex_no_match": True}])).virtual_servers[0].check.urls
    assert urls == (HttpUrl("/a", ((200, 200), (300, 399))),
                    HttpUrl("/b", expect_body="x", regex_no_match=True, host="site.example"))


@pytest.mark.parametrize(("check", "line"), [
    ({"headers": {"Host": "x"}}, "headers.Host: is set by the check itself (use host, http_user / http_password)"),
    ({"headers": {"X-A": "b\r\nX-Evil: 1"}}, "headers.X-A: must be a string without line breaks or control "
                                             "characters"),
    ({"headers": {"bad name": "x"}}, "headers: 'bad name' is not a header name"),
    ({"http_version": "2"}, 'http_version: "2" is not one of 1.1, 1.0'),
    ({"http_user": "a:b"}, "http_user: must be a user name without ':' or control characters (basic "
                           "authentication)"),
    ({"http_password": "x"}, "http_password: needs http_user"),
    ({"digest": "abc"}, "digest: must be an MD5 digest, 32 hexadecimal digits, got 'abc'"),
    ({"regex_no_match": True}, "regex_no_match: needs expect_body (the pattern the body must not match)"),
    ({"digest": "0" * 32, "method": "HEAD"}, "method: a HEAD request gets no body, so no digest can match it: "
                                             "use GET"),
    ({"urls": [{"path": "/a"}], "path": "/b"}, "path: is set per URL when urls is given: move it into each "
                                               "[[...check.urls]] entry"),
    ({"urls": [{"path": "a b"}]}, 'urls[0].path: must start with "/", got "a b"'),
    ({"urls": [{"path": "/", "digest": "x"}]}, "urls[0].digest: must be an MD5 digest, 32 hexadecimal digits, "
                                               "got 'x'"),
])
def test_errors_name_the_key_and_the_reason(check: dict[str, Any], line: str) -> None:
    assert line in errors(**check), errors(**check)


def test_the_tls_keys_are_https_only_and_need_each_other() -> None:
    assert 'tls_cert: applies only to https checks, not type "http"' in errors(tls_cert="/etc/c.pem")
    found = errors(type="https", tls_key="/etc/k.pem", tls_ca="relative.pem")
    assert {"tls_key: needs tls_cert (the certificate the key belongs to)",
            'tls_ca: must be an absolute path, got "relative.pem"'} <= set(found), found


def test_a_real_servers_virtualhost_needs_an_http_check_and_no_spaces() -> None:
    tcp = {"virtual_server": [{"name": "web", "address": "192.0.2.1", "port": 80, "check": {"type": "tcp"},
                               "real_server": [{"address": "10.0.0.1", "virtualhost": "a"}]}]}
    with pytest.raises(ConfigError) as info:
        parse_config(tcp, "f")
    assert info.value.lines == ['f: virtual_server "web".real_server[0].virtualhost: needs an http or https check, '
                                'not type "tcp"']
    spaced = config()
    spaced["virtual_server"][0]["real_server"][0]["virtualhost"] = "a b"
    with pytest.raises(ConfigError) as info:
        parse_config(spaced, "f")
    assert info.value.lines == ['f: virtual_server "web".real_server[0].virtualhost: must not contain spaces or '
                                "control characters, got 'a b'"]


def test_check_config_on_the_host_names_a_missing_tls_file(tmp_path) -> None:
    from director.config.host import host_problems
    from director.config.problems import render

    cert = tmp_path / "client.pem"
    cert.write_text("x")
    document = config(type="https", tls_cert=str(cert), tls_key=str(tmp_path / "missing.key"))
    problems = host_problems(parse_config(document, "f"), lambda: ())
    assert render(problems, "f", document) == [
        f'f: virtual_server "web".check.tls_key: no file "{tmp_path / "missing.key"}" on this host']
