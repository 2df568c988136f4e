"""The artifact users install: a wheel built from the tracked sources, installed with a
plain `pip install` into a fresh venv outside the checkout, runs every subcommand.

The editable install the other tests use would hide a package left out of the wheel
(it once shipped without director.importer and director.drill), so this builds and
installs the real thing and runs it from a directory where the checkout is not on the path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from director.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "importer" / "samples"
EXAMPLE = REPO / "examples" / "directord.toml"
TOP_PACKAGES = ("director", "healthcheck", "vrrp", "nlmsg")


class Installed:
    def __init__(self, venv: Path, wheel: Path, work: Path) -> None:
        self.venv, self.wheel, self.work = venv, wheel, work

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.work),
               "LANG": "C.UTF-8"}
        return subprocess.run([str(self.venv / "bin" / "directord"), *args], cwd=self.work, env=env,
                              capture_output=True, text=True, timeout=120)


def tracked_sources(dest: Path) -> Path:
    """The checkout's tracked files (what a release is made of), copied so the build
    writes nothing into the checkout."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    for name in filter(None, names.decode().split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("package")
    src = tracked_sources(root / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--disable-pip-version-check", "-w", str(root / "dist"), str(src)], check=True, timeout=300)
    wheel = next((root / "dist").glob("directord-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=600)
    work = root / "work"
    work.mkdir()
    return Installed(venv, wheel, work)


def source_packages() -> set[str]:
    inits = (p for top in TOP_PACKAGES for p in (REPO / top).rglob("__init__.py"))
    return {".".join(p.parent.relative_to(REPO).parts) for p in inits}


def subcommands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


def test_the_wheel_holds_every_package(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = {str(Path(n).parent).replace("/", ".") for n in wheel.namelist() if n.endswith("/__init__.py")}
    assert source_packages() - shipped == set()


def test_every_module_imports_from_the_installed_package(installed: Installed) -> None:
    script = ("import importlib, pkgutil, sys\n"
              f"tops = {TOP_PACKAGES!r}\n"
              "names = []\n"
              "for top in tops:\n"
              "    pkg = importlib.import_module(top)\n"
              "    names += [m.name for m in pkgutil.walk_packages(pkg.__path__, top + '.')]\n"
              "for name in names:\n"
              "    if not name.endswith('__main__'):\n"
              "        module = importlib.import_module(name)\n"
              "        assert '/venv/' in module.__file__, module.__file__\n"
              "print(len(names))\n")
    res = subprocess.run([str(installed.venv / "bin" / "python"), "-c", script], cwd=installed.work,
                         capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) >= len(list((REPO / "director").rglob("*.py"))) - 1


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(installed: Installed, command: str) -> None:
    res = installed.run(command, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: directord {command}")


def test_version(installed: Installed) -> None:
    res = installed.run("--version")
    assert res.returncode == 0 and res.stdout.startswith("directord ")


@pytest.mark.parametrize(("source", "sample"), [("keepalived", "keepalived.conf"), ("ldirectord", "ldirectord.cf"),
                                                 ("piranha", "lvs.cf")])
def test_import_writes_a_config_that_passes_check_config(installed: Installed, source: str, sample: str) -> None:
    out = installed.work / f"{source}.toml"
    res = installed.run("import", "--from", source, str(SAMPLES / sample), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    check = installed.run("check-config", "--no-host-checks", "-c", str(out))
    assert check.returncode == 0, check.stdout + check.stderr


def test_check_config_on_the_example(installed: Installed) -> None:
    res = installed.run("check-config", "--no-host-checks", "-c", str(EXAMPLE))
    assert res.returncode == 0, res.stdout + res.stderr


def test_probe_runs_the_checks(installed: Installed) -> None:
    config = installed.work / "probe.toml"
    config.write_text('[[virtual_server]]\nname = "web"\naddress = "192.0.2.10"\nport = 80\n'
                      '[virtual_server.check]\ntype = "none"\n'
                      '[[virtual_server.real_server]]\naddress = "127.0.0.1"\nport = 80\n')
    res = installed.run("probe", "--json", "-c", str(config))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)


@pytest.mark.parametrize("args", [("status",), ("reload",), ("drain", "10.0.0.1"), ("undrain", "10.0.0.1"),
                                  ("failover", "VI_1")])
def test_control_commands_say_the_daemon_is_not_running(installed: Installed, args: tuple[str, ...]) -> None:
    res = installed.run(*args, "-c", str(EXAMPLE), "--socket", str(installed.work / "no.sock"))
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("command", ["diff", "apply"])
def test_table_commands_end_with_one_line_without_ipvs(installed: Installed, command: str) -> None:
    """The host kernel has no IPVS (DESIGN.md): one clear line and exit 2, never a traceback."""
    if Path("/proc/net/ip_vs").exists():
        pytest.fail("this host has IPVS: the test assumes the host kernel without it")
    res = installed.run(command, "-c", str(EXAMPLE), "--state-dir", str(installed.work / "state"))
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr


def test_drill_loads_and_names_a_missing_lab(installed: Installed) -> None:
    res = installed.run("drill", "--lab", f"nosuchlab{os.getpid()}")
    assert res.returncode == 2
    assert "is not up" in res.stderr and "Traceback" not in res.stderr


def test_run_refuses_a_bad_config_in_one_line(installed: Installed) -> None:
    config = installed.work / "bad.toml"
    config.write_text("[global]\nrouter_id = 7\n")
    res = installed.run("run", "-c", str(config))
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0 and "global.router_id" in res.stderr, res.stderr
