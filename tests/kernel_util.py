"""Helpers for tests that run against a real IPVS kernel (inside the VM rig): independent views
of the table and the CLI run in-process. The labs themselves are in scripts.labkit."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from director.cli import main
from scripts.labkit import sh


def ipvsadm(*args: str) -> str:
    return sh(["ipvsadm", *args], timeout=300)


def rules() -> set[str]:
    """The kernel table as `ipvsadm -Sn` rule lines: an independent view of what is programmed."""
    return {line.strip() for line in ipvsadm("-S", "-n").splitlines() if line.strip()}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def directord(*args: str, config: Path | str | None = None) -> Result:
    """Run the CLI in this process: the same code path as the console script, without an
    interpreter start per call (seconds each under the VM's emulated CPU)."""
    argv = [*args, *(["-c", str(config)] if config is not None else [])]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return Result(code, out.getvalue(), err.getvalue())


def apply_json(config: Path | str, state_dir: Path | str) -> dict:
    proc = directord("apply", "--json", "--state-dir", str(state_dir), config=config)
    assert proc.returncode in (0, 2), proc.stderr
    return json.loads(proc.stdout) | {"returncode": proc.returncode, "stderr": proc.stderr}
