"""The .deb installed as a user installs it, `apt install ./directord_*.deb`, into a fresh
Debian 12 root made by debootstrap (dependencies from the Debian mirror), then the installed
commands run there on Debian's python3, uvloop and structlog.

The root is a chroot here; test_deb_systemd.py boots one under systemd."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import director
from scripts.labkit import Lab
from tests.packaging import debian_root

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
PROBE = """\
[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
  [virtual_server.check]
  type = "http"
  path = "/"
  interval = "2s"
  timeout = "1s"
  [[virtual_server.real_server]]
  address = "127.0.0.1"
  port = 8080
"""


def run(argv: list[str], timeout: float = 600, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def root(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("debian-root") / "root"
    try:
        debian_root.debootstrap(path)
        debian_root.install_package(path, deb)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def inside(root: Path, *argv: str, ns: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return run([*prefix, "chroot", str(root), *argv], 120)


def test_installed_from_debian_mirror_not_a_venv(root: Path) -> None:
    versions = inside(root, "dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
                      "directord", "python3-uvloop", "python3-structlog")
    assert versions.returncode == 0, versions.stderr
    assert f"directord {director.__version__}" in versions.stdout
    assert "python3-uvloop 0.17" in versions.stdout and "python3-structlog 22.3" in versions.stdout


def test_version_and_check_config_on_the_installed_example(root: Path) -> None:
    version = inside(root, "directord", "--version")
    assert version.returncode == 0 and director.__version__ in version.stdout, version.stdout + version.stderr
    checked = inside(root, "directord", "check-config", "--no-host-checks", "-c", "/etc/directord/directord.toml")
    assert checked.returncode == 0, checked.stderr
    assert "ok (1 virtual server" in checked.stdout
    assert "Traceback" not in checked.stderr


def test_import_a_keepalived_config(root: Path) -> None:
    (root / "tmp" / "keepalived.conf").write_text(debian_root.KEEPALIVED_SAMPLE)
    converted = inside(root, "directord", "import", "--from", "keepalived", "/tmp/keepalived.conf",
                       "-o", "/tmp/imported.toml")
    assert converted.returncode == 0, converted.stderr
    checked = inside(root, "directord", "check-config", "--no-host-checks", "-c", "/tmp/imported.toml")
    assert checked.returncode == 0, checked.stderr


def test_probe_against_a_local_server(root: Path) -> None:
    (root / "tmp" / "probe.toml").write_text(PROBE)
    with Lab("deb-") as lab:
        ns = lab.netns("a")
        server = subprocess.Popen(["ip", "netns", "exec", ns, "chroot", str(root), "python3", "-m", "http.server",
                                   "8080", "--bind", "127.0.0.1", "--directory", "/tmp"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while (up := inside(root, "directord", "probe", "-c", "/tmp/probe.toml", ns=ns)).returncode != 0:
                assert time.monotonic() < deadline, up.stdout + up.stderr
                time.sleep(0.5)
            assert "127.0.0.1:8080" in up.stdout
        finally:
            server.terminate()
            server.wait(timeout=10)
        down = inside(root, "directord", "probe", "-c", "/tmp/probe.toml", ns=ns)
        assert down.returncode == 1, down.stdout + down.stderr
