"""`directord drill` refuses a missing or half-built lab with one clear line and exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from director.cli import main


def drill(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["drill", *args])
    return code, capsys.readouterr().err


def test_missing_lab(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = drill(capsys, "--lab", f"nosuchlab{os.getpid()}")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "is not up" in err


def test_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = drill(capsys, "--scenario", "meteor")
    assert code == 2 and "unknown scenario meteor" in err


def test_half_built_lab(capsys: pytest.CaptureFixture[str], state_file: Path) -> None:
    name = state_file.name.removeprefix("directord-lab-").removesuffix(".json")
    state_file.write_text(json.dumps({"name": name, "complete": False, "namespaces": [f"{name}-sw"], "pids": {}}))
    code, err = drill(capsys, "--lab", name)
    assert code == 2 and "half-built" in err and len(err.strip().splitlines()) == 1
    state_file.write_text(json.dumps({"name": name, "complete": True, "namespaces": [f"{name}-sw"], "pids": {}}))
    code, err = drill(capsys, "--lab", name)
    assert code == 2 and f"namespace {name}-sw is missing" in err


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--repeat", "0", "'0' is not a number of rounds from 1 to 100"),
    ("--repeat", "x", "'x' is not a number of rounds from 1 to 100"),
    ("--rate", "0", "'0' is not a rate above 0 and up to 1000 connections a second"),
    ("--fault-phase", "-1", "'-1' is not a number of seconds from 0 to 10, nor `random`"),
])
def test_bad_numbers_are_refused_by_name(capsys: pytest.CaptureFixture[str], option: str, value: str,
                                         says: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["drill", option, value])
    assert exit_.value.code == 2 and f"argument {option}: {says}" in capsys.readouterr().err


def test_directors_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = drill(capsys, "--directors", "directord,haproxy", "--lab", f"nosuchlab{os.getpid()}")
    assert code == 2 and err.strip() == "directord drill: unknown director haproxy (known: directord, keepalived)"
    code, err = drill(capsys, "--directors", "keepalived", "--lab", f"nosuchlab{os.getpid()}")
    assert code == 2 and "is not up" in err  # a known one passes on to the lab check


def test_gate_limits_the_exit_code_to_named_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """keepalived run as a reference breaks a bound: reported either way, failing only ungated."""
    import argparse

    from director.drill.cli import finish
    from director.drill.core import Bounds, Event, Request, Run

    def run(impl: str, takeover: float) -> Run:
        events = [Event(0, "lb1", "vip_add"), Event(1.9, "lb1", "advert"), Event(2, "lb1", "down"),
                  Event(2 + takeover, "lb2", "vip_add"), Event(2 + takeover, "lb2", "garp")]
        return Run("sigkill", impl, 0, 2, 6, events, [Request(i / 10, True, f"rs{i % 3 + 1}") for i in range(60)], [])

    state = {"name": "t", "variant": "nat", "vip": "198.51.100.10", "advert_interval": 0.25,
             "priorities": {"lb2": 100}}
    runs = [run("directord", 0.8), run("keepalived", 1.0)]
    for gate, expected in (("directord", 0), (None, 1), ("directord,keepalived", 1)):
        args = argparse.Namespace(report=str(tmp_path / "r"), json=False, gate=gate)
        code = finish(args, state, Bounds(0.952), ["directord", "keepalived"], ["sigkill"], ["rs1", "rs2", "rs3"], runs)
        out = capsys.readouterr().out
        assert code == expected
        assert "keepalived: BOUND BROKEN: takeover 1.000s > 0.952s" in out
    assert (tmp_path / "r.runs.json").exists() and (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
