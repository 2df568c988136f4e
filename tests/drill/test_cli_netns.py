"""`directord drill` on a lab whose namespaces exist but whose real server died."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.labkit import Lab
from tests.drill.test_cli import drill


def test_lab_with_a_dead_server(capsys: pytest.CaptureFixture[str], state_file: Path) -> None:
    """Every namespace there, but a real server's process died: still half-built, named."""
    import subprocess

    name = state_file.name.removeprefix("directord-lab-").removesuffix(".json")
    lab = Lab(f"{name}-", private=False)  # named as `python -m scripts.lab up` names them
    lab.netns("rs1")
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        state_file.write_text(json.dumps({"name": name, "complete": True, "namespaces": [f"{name}-rs1"],
                                          "pids": {"httpd-rs1": dead.pid}}))
        code, err = drill(capsys, "--lab", name)
        assert code == 2 and err.strip() == (f"directord drill: lab {name} is half-built: httpd-rs1 is not running; "
                                             f"run `python -m scripts.lab down --name {name}` then `up`")
    finally:
        lab.close()
