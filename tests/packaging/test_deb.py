"""scripts/build-deb: the .deb a user installs, built from this checkout and read back.

Installing it into a booted Debian root (systemd as init) is not part of this suite yet:
this checks what the package carries, with dpkg's own tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {
    "./usr/bin/directord", "./lib/systemd/system/directord.service", "./etc/directord/directord.toml",
    "./usr/share/man/man8/directord.8.gz", "./usr/share/man/man5/directord.toml.5.gz",
    "./usr/share/bash-completion/completions/directord", "./usr/share/zsh/vendor-completions/_directord",
    "./usr/share/doc/directord/README.md", "./usr/share/doc/directord/copyright",
    "./usr/share/doc/directord/docs/configuration.md",
}


def contents(deb: Path) -> dict[str, str]:
    """path -> mode string, from `dpkg-deb -c`."""
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    return {line.split()[5]: line.split()[0] for line in listing.splitlines()}


def field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout


def test_the_package_carries_the_product(deb: Path) -> None:
    files = contents(deb)
    assert set(files) >= EXPECTED, EXPECTED - set(files)
    assert files["./etc/directord/directord.toml"] == "-rw-------"
    assert files["./usr/bin/directord"] == "-rwxr-xr-x"
    assert any(name.endswith("dist-packages/director/cli.py") for name in files)
    assert not any("/tests/" in name or "/benchmarks/" in name for name in files)


def test_it_depends_on_debian_libraries_not_a_bundled_venv(deb: Path) -> None:
    depends = field(deb, "Depends")
    assert "python3-uvloop" in depends and "python3-structlog" in depends, depends
    assert "pyroute2" not in depends and "scapy" not in depends
    assert field(deb, "Architecture").strip() == "all"


def test_the_config_is_a_conffile_and_the_unit_points_at_the_man_page(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path / "control")], check=True)
    assert (tmp_path / "control" / "conffiles").read_text().split() == ["/etc/directord/directord.toml"]
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")], check=True)
    unit = (tmp_path / "root" / "lib/systemd/system/directord.service").read_text()
    assert "Documentation=man:directord(8)" in unit and "ExecStart=/usr/bin/directord run" in unit
    example = (tmp_path / "root" / "etc/directord/directord.toml").read_text()
    assert example == (REPO / "examples" / "directord.toml").read_text()


def test_the_installed_man_pages_render_without_warnings(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    for page in ("man8/directord.8.gz", "man5/directord.toml.5.gz"):
        rendered = subprocess.run(["man", "--warnings", "-l", str(tmp_path / "usr/share/man" / page)],
                                  capture_output=True, text=True, env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"})
        assert rendered.returncode == 0 and rendered.stderr == "", rendered.stderr
        assert "directord" in rendered.stdout
