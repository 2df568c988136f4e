"""keepalived's HTTP_GET / SSL_GET url blocks imported exactly: each url with its own path,
status_code (200-299 when none), digest, regex and regex_no_match, virtualhost per url, and
http_protocol."""

from __future__ import annotations

from director.config.model import HttpUrl
from director.importer.keepalived import convert
from tests.importer.helpers import imported, notes
from tests.importer.test_keepalived import write

CONF = """
virtual_server 192.0.2.10 80 {
    protocol TCP
    virtualhost www.example.org
    real_server 10.0.0.11 80 {
        HTTP_GET {
%(body)s
        }
    }
}
"""


def check(tmp_path, body: str):  # type: ignore[no-untyped-def]
    conv = convert(write(tmp_path, CONF % {"body": body}))
    config, data = imported(conv, "keepalived")
    return conv, config.virtual_servers[0].check, data["virtual_server"][0]["check"]


def test_several_url_blocks_become_urls_each_with_its_own_expectations(tmp_path) -> None:
    conv, chk, data = check(tmp_path, """
            http_protocol 1.0C
            url {
              path /health
              digest FF20AD2481F97B1754EF3E12ECD3A9CC
            }
            url {
              path /app
              status_code 200 300-399
              regex "Fatal error"
              regex_no_match
              virtualhost app.example.org
            }""")
    assert chk.http_version == "1.0" and chk.host == "www.example.org"  # the virtual server's virtualhost
    assert chk.urls == (HttpUrl("/health", ((200, 299),), digest="ff20ad2481f97b1754ef3e12ecd3a9cc"),
                        HttpUrl("/app", ((200, 200), (300, 399)), "Fatal error", True, host="app.example.org"))
    assert "path" not in data and len(data["urls"]) == 2
    assert not notes(conv)


def test_one_url_block_is_the_checks_own_keys_and_its_virtualhost_wins(tmp_path) -> None:
    conv, chk, _ = check(tmp_path, """
            url {
              path /crossdomain.xml
              status_code 200
              virtualhost lb.example.tv
              regex ok
            }""")
    assert (chk.path, chk.expect_status, chk.host, chk.expect_body, chk.urls) == \
        ("/crossdomain.xml", ((200, 200),), "lb.example.tv", "ok", ())
    assert not notes(conv)


TWO = """
virtual_server 192.0.2.10 80 {
    protocol TCP
    real_server 10.0.0.11 80 {
        HTTP_GET {
            url {
              path /health
              virtualhost a.example.org
            }
        }
    }
    real_server 10.0.0.12 80 {
        virtualhost b.example.org
        HTTP_GET {
            url {
              path /health
            }
        }
    }
    real_server 10.0.0.13 80 {
        HTTP_GET {
            url {
              path /other
            }
        }
    }
}
"""


def test_checks_that_differ_only_by_host_keep_it_per_real_server(tmp_path) -> None:
    """keepalived's Host is the url's virtualhost, else the real server's, else the service's:
    real servers whose checks differ only there share the service's check, each keeping its own
    virtualhost; once one checks another path, each keeps its own check, Host included."""
    two = TWO.replace("path /other", "path /health").replace("    real_server 10.0.0.13 80 {",
                                                               "    real_server 10.0.0.13 80 {\n"
                                                               "        virtualhost a.example.org")
    conv = convert(write(tmp_path, two))
    config, _ = imported(conv, "keepalived")
    vs = config.virtual_servers[0]
    assert (vs.check.host, vs.check.path) == ("a.example.org", "/health")
    assert [rs.virtualhost for rs in vs.real_servers] == [None, "b.example.org", None]
    assert notes(conv) == {}
    conv = convert(write(tmp_path, TWO))
    config, _ = imported(conv, "keepalived")
    vs = config.virtual_servers[0]
    assert vs.check.type == "none"
    assert [(rs.checks[0].host, rs.checks[0].path) for rs in vs.real_servers] == [
        ("a.example.org", "/health"), ("b.example.org", "/health"), (None, "/other")]
    assert notes(conv) == {}


def test_a_services_virtualhost_leaves_a_tcp_check_alone(tmp_path) -> None:
    conv = convert(write(tmp_path, CONF.replace("HTTP_GET", "TCP_CHECK") % {"body": "connect_timeout 3"}))
    config, _ = imported(conv, "keepalived")
    assert (config.virtual_servers[0].check.type, config.virtual_servers[0].check.host) == ("tcp", None)


def test_a_real_server_virtualhost_leaves_its_tcp_check_alone(tmp_path) -> None:
    conv = convert(write(tmp_path, """
virtual_server 192.0.2.10 443 {
    protocol TCP
    virtualhost a.example.org
    real_server 10.0.0.11 443 { TCP_CHECK { connect_timeout 2 } }
    real_server 10.0.0.12 443 {
        virtualhost b.example.org
        TCP_CHECK { connect_timeout 2 }
    }
}
"""))
    config, _ = imported(conv, "keepalived")
    vs = config.virtual_servers[0]
    assert vs.check.type == "tcp" and all(rs.virtualhost is None for rs in vs.real_servers)
