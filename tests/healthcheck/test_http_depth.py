"""HTTP depth against a real nginx the test configures: basic authentication (an htpasswd
file written with `openssl passwd`), a request header nginx requires, keepalived's body
digest, regex_no_match, several URLs, HEAD, HTTP/1.0, and HTTPS with a client certificate
(nginx `ssl_verify_client` on a CA the test makes with openssl), each passing and failing
with its reason."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from director.config.model import CheckConfig, HttpUrl
from healthcheck import http, http_depth
from healthcheck import http_parse as hp
from healthcheck._io import ProbeError
from healthcheck.result import Target
from tests.healthcheck.conftest import NGINX_PRELUDE, free_port, need, run, stop, wait_tcp

LOCAL = "127.0.0.1"
BODY = "the known body\n"
NGINX = NGINX_PRELUDE.replace("{connections}", "64") + """    server {{
        listen 127.0.0.1:{port};
        location = /known {{ return 200 "{body}"; }}
        location = /protocol {{ return 200 "$server_protocol"; }}
        location = /host {{ return 200 "host=$host"; }}
        location = /private {{  # a file, not return: return runs before the access phase
            auth_basic "lb";
            auth_basic_user_file {d}/htpasswd;
            alias {d}/private.txt;
        }}
        location = /needs-header {{
            if ($http_x_check != "lb") {{ return 403; }}
            return 200 "header seen";
        }}
        location = /error-page {{ return 200 "Fatal error: database down"; }}
        location / {{ return 404; }}
    }}
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        server_name health.test;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server.key;
        ssl_client_certificate {d}/ca.pem;
        ssl_verify_client on;
        location = /known {{ return 200 "{body}"; }}
    }}
}}
"""


def openssl(*args: str | Path) -> None:
    subprocess.run([need("openssl"), *map(str, args)], check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """A CA, a server certificate for health.test / 127.0.0.1 and a client certificate, both signed by it."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-days", "1", "-subj", "/CN=test CA", "-keyout", d / "ca.key", "-out", d / "ca.pem")
    for name, extra in (("server", ["-addext", "subjectAltName=DNS:health.test,IP:127.0.0.1"]), ("client", [])):
        openssl("req", *ec, "-subj", f"/CN={name}", *extra, "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr")
        openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
                "-CAcreateserial", "-days", "1", "-copy_extensions", "copy", "-out", d / f"{name}.pem")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """nginx with the locations above; yields (http_port, https_port, directory)."""
    binary = need("nginx")
    d = tmp_path_factory.mktemp("nginx-depth")
    make_pki(d)
    hashed = subprocess.run([need("openssl"), "passwd", "-apr1", "s3cret"], check=True, capture_output=True,
                            text=True).stdout.strip()
    (d / "htpasswd").write_text(f"probe:{hashed}\n")
    (d / "private.txt").write_text("welcome\n")
    port, tls_port = free_port(), free_port()
    conf = d / "nginx.conf"
    conf.write_text(NGINX.format(d=d, port=port, tls_port=tls_port, body=BODY.replace("\n", "\\n")))
    checked = subprocess.run([binary, "-t", "-p", str(d), "-c", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([binary, "-p", str(d), "-c", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_tcp(port, proc, "nginx")
        wait_tcp(tls_port, proc, "nginx")
        yield port, tls_port, d
    finally:
        stop(proc)


def probe(port: int, **check: object):  # type: ignore[no-untyped-def]
    return run(http.probe(Target(LOCAL, port), CheckConfig(**{"type": "http", "timeout": 3.0, **check})))


MD5 = hashlib.md5(BODY.encode(), usedforsecurity=False).hexdigest()


def test_basic_authentication(server) -> None:
    port = server[0]
    assert probe(port, path="/private", http_user="probe", http_password="s3cret").ok
    wrong = probe(port, path="/private", http_user="probe", http_password="nope")
    assert not wrong.ok and "status 401" in wrong.reason
    assert "status 401" in probe(port, path="/private").reason


def test_a_request_header_the_server_requires(server) -> None:
    port = server[0]
    assert probe(port, path="/needs-header", headers=(("X-Check", "lb"),)).ok
    assert "status 403" in probe(port, path="/needs-header", headers=(("X-Check", "other"),)).reason


def test_digest_of_a_known_body(server) -> None:
    port = server[0]
    result = probe(port, path="/known", digest=MD5)
    assert result.ok and result.reason == "HTTP 200 OK, digest matched", result
    wrong = probe(port, path="/known", digest="0" * 32)
    assert not wrong.ok and wrong.reason == f"body digest {MD5} is not {'0' * 32}"
    cut = probe(port, path="/known", digest=MD5, max_body=4)
    assert not cut.ok and "digest not computed" in cut.reason


def test_regex_no_match_fails_on_an_error_page_served_with_200(server) -> None:
    port = server[0]
    bad = probe(port, path="/error-page", expect_body="Fatal error", regex_no_match=True)
    assert not bad.ok and "regex_no_match" in bad.reason
    assert probe(port, path="/known", expect_body="Fatal error", regex_no_match=True).ok


def test_several_urls_must_all_pass_each_with_its_own_expectation(server) -> None:
    port = server[0]
    urls = (HttpUrl("/known", digest=MD5), HttpUrl("/host", expect_body="host=site.example", host="site.example"),
            HttpUrl("/nope", expect_status=((404, 404),)))
    result = probe(port, urls=urls)
    assert result.ok and result.reason.startswith("3 URLs passed"), result
    failing = probe(port, urls=(*urls, HttpUrl("/error-page", expect_body="Fatal", regex_no_match=True)))
    assert not failing.ok and failing.reason.startswith("/error-page: body matched 'Fatal'"), failing


def test_head_and_http_1_0(server) -> None:
    port = server[0]
    assert probe(port, path="/known", method="HEAD").ok
    assert probe(port, path="/protocol", http_version="1.0", expect_body=r"^HTTP/1\.0$").ok
    assert probe(port, path="/protocol", expect_body=r"^HTTP/1\.1$").ok
    # the request bytes say so
    request = http.request_bytes(Target(LOCAL, port), CheckConfig(type="http", method="HEAD", http_version="1.0"),
                                 False)
    assert request.startswith(b"HEAD / HTTP/1.0\r\n")


def test_https_with_a_client_certificate_and_a_ca_file(server) -> None:
    _, tls_port, d = server
    check = CheckConfig(type="https", path="/known", timeout=3.0, digest=MD5, tls_verify=True, sni="health.test",
                        tls_ca=str(d / "ca.pem"), tls_cert=str(d / "client.pem"), tls_key=str(d / "client.key"))
    result = run(http.probe(Target(LOCAL, tls_port), check))
    assert result.ok, result
    without = dataclasses.replace(check, tls_cert=None, tls_key=None, digest=None)
    refused = run(http.probe(Target(LOCAL, tls_port), without))
    assert not refused.ok and "status 400" in refused.reason, refused  # nginx: "No required SSL certificate"
    missing = run(http.probe(Target(LOCAL, tls_port), dataclasses.replace(check, tls_cert=str(d / "nope.pem"))))
    assert not missing.ok and missing.reason.startswith("bad TLS files"), missing


# --- the sans-IO judge on any bytes ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6),
       digest=st.booleans(), no_match=st.booleans())
def test_the_url_judge_gives_a_verdict_or_a_reason_for_any_reply(data: bytes, cuts: list[int], digest: bool,
                                                                 no_match: bool) -> None:
    url = HttpUrl("/", expect_body="ok" if no_match or not digest else None, regex_no_match=no_match,
                  digest=MD5 if digest else None)
    judge = http_depth.UrlJudge(url, "GET", 64)
    pieces = [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)]
    try:
        for piece in [p for p in pieces if p] + [b""]:
            verdict = judge.feed(piece)
            if verdict is not None:
                assert isinstance(verdict[0], bool) and verdict[1]
                return
        pytest.fail("the end of the stream gave no verdict")
    except ProbeError as exc:
        assert str(exc)


def test_the_url_judge_reads_a_chunked_body_across_reads_for_the_digest() -> None:
    body = BODY.encode()
    reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % 4 + body[:4] + b"\r\n"
             + b"%x\r\n" % (len(body) - 4) + body[4:] + b"\r\n0\r\n\r\n")
    judge = http_depth.UrlJudge(HttpUrl("/", digest=MD5), "GET", 1024)
    verdicts = [judge.feed(reply[i:i + 7]) for i in range(0, len(reply), 7)]
    assert [v for v in verdicts if v is not None] == [(True, "HTTP 200 OK, digest matched")]


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=12), value=st.text(max_size=24), user=st.text(max_size=8))
def test_built_requests_never_carry_an_injected_line(name: str, value: str, user: str) -> None:
    """Whatever reaches the builder, a request has exactly its own lines, or is refused."""
    try:
        request = hp.build_request("GET", "/", "h", "ua", "1.0", ((name, value),), f"Basic {user}")
    except ValueError:
        return
    head = request.decode("latin-1")
    assert head.endswith("\r\n\r\n") and head.count("\r\n") == 8 and "\n" not in head.replace("\r\n", "")
    assert head.split("\r\n")[5:] == [f"Authorization: Basic {user}", f"{name}: {value}", "", ""]


def test_a_real_servers_virtualhost_is_its_host_header(server) -> None:
    """[[virtual_server.real_server]] virtualhost: each real server checked with its own Host."""
    from director.config.load import parse_config
    from director.daemon.health import targets_from_config

    port = server[0]
    config = parse_config({"virtual_server": [{
        "name": "web", "address": "192.0.2.1", "port": port,
        "check": {"type": "http", "path": "/host", "expect_body": "^host=site-a$", "timeout": "3s"},
        "real_server": [{"address": LOCAL, "virtualhost": "site-a"}, {"address": "127.0.0.2", "virtualhost": "b"}]}]})
    subscriptions = targets_from_config(config.virtual_servers)
    target, check = subscriptions[("web", f"{LOCAL}:{port}")]
    assert run(http.probe(target, check)).ok
    other = subscriptions[("web", f"127.0.0.2:{port}")][1]
    assert other.host == "b" and not run(http.probe(target, other)).ok  # Host b: the body says so
