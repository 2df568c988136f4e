"""Fixtures: real servers (nginx, kamailio) as child processes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def run(coro):
    return asyncio.run(coro)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_tcp(port: int, proc: subprocess.Popen, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"{what} exited with {proc.returncode}: {out}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def need(binary: str) -> str:
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{binary} is not installed (scripts/setup installs it)")
    return path


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for health.test and 127.0.0.1 (also its own CA)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [need("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=health.test",
         "-addext", "subjectAltName=DNS:health.test,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


# nginx run by a test in its own directory {d}: no daemon, no logs but errors, temp paths there
NGINX_PRELUDE = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
"""
NGINX_CONF = NGINX_PRELUDE.replace("{connections}", "256") + """    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl;
        server_name health.test;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location = /health {{ return 200 "status: ok\\n"; }}
        location = /fail {{ return 503 "down for maintenance\\n"; }}
        location = /moved {{ return 302 /health; }}
        location = /host {{ return 200 "host=$host\\n"; }}
        location / {{ return 404; }}
    }}
}}
"""


@pytest.fixture(scope="session")
def nginx(tmp_path_factory, tls_cert):
    """nginx serving HTTP and HTTPS; yields (http_port, https_port)."""
    binary = need("nginx")
    d = tmp_path_factory.mktemp("nginx")
    port, tls_port = free_port(), free_port()
    conf = d / "nginx.conf"
    conf.write_text(NGINX_CONF.format(
        d=d, port=port, tls_port=tls_port, cert=tls_cert[0], key=tls_cert[1]))
    check = subprocess.run([binary, "-t", "-p", str(d), "-c", str(conf)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([binary, "-p", str(d), "-c", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_tcp(port, proc, "nginx")
        wait_tcp(tls_port, proc, "nginx")
        yield port, tls_port
    finally:
        stop(proc)


KAMAILIO_CFG = """#!KAMAILIO
debug=1
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
mpath="{mpath}"
loadmodule "sl.so"
request_route {{
    if (method=="OPTIONS") {{
        sl_send_reply("{code}", "{reason}");
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"""


def _kamailio_mpath() -> str:
    for d in ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules",
              "/usr/lib64/kamailio/modules"):
        if Path(d, "sl.so").exists():
            return d + "/"
    pytest.fail("kamailio modules (sl.so) not found")


@pytest.fixture(scope="session")
def kamailio(tmp_path_factory):
    """Factory: kamailio answering OPTIONS with `code reason`; returns its port (UDP=TCP)."""
    binary = need("kamailio")
    procs: dict[tuple[int, str], tuple[subprocess.Popen, int]] = {}

    def start(code: int = 200, reason: str = "OK") -> int:
        if (code, reason) in procs:
            return procs[code, reason][1]
        d = tmp_path_factory.mktemp(f"kamailio{code}")
        port = free_port()
        cfg = d / "kamailio.cfg"
        cfg.write_text(KAMAILIO_CFG.format(port=port, mpath=_kamailio_mpath(), code=code,
                                           reason=reason))
        check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen(
            [binary, "-DD", "-E", "-m", "32", "-M", "4", "-f", str(cfg), "-Y", str(d)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs[code, reason] = (proc, port)
        wait_tcp(port, proc, "kamailio")
        return port

    try:
        yield start
    finally:
        for proc, _ in procs.values():
            stop(proc)
