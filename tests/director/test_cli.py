"""The CLI's contract on this host: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "directord.toml"


def directord(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "director.cli", *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    proc = directord("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("directord ")


@pytest.mark.parametrize("command", ["diff", "apply"])
def test_kernel_without_ipvs_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    if Path("/proc/net/ip_vs").exists():
        pytest.fail("this test describes a host kernel without IPVS; run it outside the VM rig")
    proc = directord(command, "-c", str(EXAMPLE), "--state-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"directord {command}: the kernel has no IPVS (ip_vs module not loaded or not built)"]


def test_config_error_exits_1_before_touching_the_kernel(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[virtual_server]]\nname = "x"\naddress = "192.0.2.1"\nport = 80\nscheduler = "nope"\n')
    proc = directord("apply", "-c", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].startswith(f"{bad}: virtual_server[0].scheduler: \"nope\" is not one of")


def test_run_refuses_an_empty_config(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    proc = directord("run", "-c", str(empty))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"directord run: {empty}: nothing to run (no virtual_server or vrrp_instance tables)"


def test_unknown_command_is_a_usage_error() -> None:
    proc = directord("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
