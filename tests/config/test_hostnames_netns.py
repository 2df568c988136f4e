"""Real servers named by host name: resolved when the config is read, through the host's own
resolver (getaddrinfo with nsswitch). Each test runs check-config in a network namespace
whose /etc/hosts (ip netns exec's /etc/netns/NAME/hosts) names the servers, so no DNS and no
network is involved: the namespace has no route, so a name that is not there fails at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

HOSTS = """127.0.0.1 localhost
192.0.2.21 web1.lab.test web1
192.0.2.22 web2.lab.test
2001:db8::23 web3.lab.test
"""

CONFIG = """
[[virtual_server]]
name = "web"
address = "{vip}"
port = 80
  [[virtual_server.real_server]]
  address = "{host}"
  [[virtual_server.real_server]]
  address = "web2.lab.test"
"""


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"dtord-hosts-{uuid.uuid4().hex[:8]}"
    etc = Path("/etc/netns") / name
    etc.mkdir(parents=True)
    (etc / "hosts").write_text(HOSTS)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
        shutil.rmtree(etc, ignore_errors=True)


def check_config(namespace: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    code = ("import json, sys\nfrom director.config.load import load_config, ConfigError\n"
            "try:\n    c = load_config(sys.argv[1])\n"
            "except ConfigError as e:\n    print(str(e), file=sys.stderr); sys.exit(1)\n"
            "print(json.dumps([str(rs.address) for vs in c.virtual_servers for rs in vs.real_servers]))\n")
    return subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", code, str(path), *extra],
                          capture_output=True, text=True, timeout=60, cwd=os.getcwd(),
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_names_resolve_to_the_service_family(namespace: str, tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text(CONFIG.format(vip="192.0.2.10", host="web1"))
    proc = check_config(namespace, path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '["192.0.2.21", "192.0.2.22"]'


@pytest.mark.parametrize(("vip", "host", "message"), [
    ("192.0.2.10", "web9.lab.test", '"web9.lab.test" does not resolve'),
    ("2001:db8::10", "web3.lab.test", '"web2.lab.test" has no IPv6 address (it resolves to 192.0.2.22)'),
])
def test_a_name_that_does_not_fit_is_one_clear_error(namespace: str, tmp_path: Path, vip: str, host: str,
                                                     message: str) -> None:
    path = tmp_path / "d.toml"
    path.write_text(CONFIG.format(vip=vip, host=host))
    proc = check_config(namespace, path)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and f"{path}:" in proc.stderr
