"""The drill end to end in the VM: a NAT lab with a directord pair, the master SIGKILLed under
load; no long-lived connection may break (IPVS connection sync follows VRRP) and the backup must
take over within Master_Down_Interval + 50 ms. `down` must leave no namespace behind."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from director.drill.cli import run_drill
from director.drill.core import master_down_interval

REPO = Path(__file__).resolve().parents[2]
LAB = f"dtd{os.getpid() % 10000}"
# The target is Master_Down_Interval + 50 ms. Under the VM's emulated CPU (10-30x slower) timers,
# GARPs and address changes run late: the bound gets an explicit allowance there, and only there.
EMULATION_ALLOWANCE = 0.15 if os.environ.get("DIRECTORD_IN_VM") else 0.0


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "lab.py"), *args, "--name", LAB],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.kernel
def test_sigkill_drill_loses_no_connection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        up = lab("up", "--variant", "nat")
        assert up.returncode == 0, up.stderr
        state = json.loads(Path(f"/run/directord-lab-{LAB}.json").read_text())
        bound = master_down_interval(state["advert_interval"], state["priorities"]["lb2"]) + 0.05 + EMULATION_ALLOWANCE
        args = argparse.Namespace(lab=LAB, scenario=["sigkill"], report=str(tmp_path / "drill"), max_takeover=bound,
                                  max_failed_requests=None, max_lost_connections=0, json=True,
                                  directors=["directord"])
        code = run_drill(args)
        out = json.loads(capsys.readouterr().out)
        (figures,) = out["runs"]
        print(json.dumps(figures, indent=1), file=sys.stderr)
        assert figures["error"] == ""
        assert figures["lost_connections"] == 0 and figures["connections"] > 0
        assert figures["takeover"] is not None and figures["takeover"] <= bound
        assert figures["holder"] == "lb2"
        assert code == 0
        assert (tmp_path / "drill.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        down = lab("down")
    assert down.returncode == 0, down.stderr
    leftovers = [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                 if ns.startswith(f"{LAB}-")]
    assert leftovers == []
    assert not Path(f"/run/directord-lab-{LAB}.json").exists()
