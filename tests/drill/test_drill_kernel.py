"""The drill end to end in the VM: a NAT lab, the master SIGKILLed under load, for a directord
pair and a keepalived pair. No long-lived connection may break (IPVS connection sync follows VRRP),
the backup must take over within Master_Down_Interval + 50 ms of the kill, and the kill must be
a hard one: no priority 0 advert (keepalived's VRRP child dies with its parent's group) and the
takeover no sooner than Master_Down_Interval after the master's last advert (see GROUP_SPREAD). `down` must leave no
namespace behind."""

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
# The target is Master_Down_Interval + 50 ms. Under the VM's emulated CPU (10-30x slower) the
# backup's timer fires late: measured from the master's last advert to the backup's gratuitous ARP,
# 1044 ms for directord and 1062 ms for keepalived against a 902 ms Master_Down_Interval
# (benchmarks/drill_results.md). The bound gets that allowance there, and only there.
EMULATION_ALLOWANCE = 0.2 if os.environ.get("DIRECTORD_IN_VM") else 0.0
# The NAT lab's two instances are a sync group. It moves on whichever member's down timer fires
# first (once the other is due within an advert interval), and the client sees only VI_FRONT's
# adverts. The backup's timers run from each advert's arrival, so when the old master's VI_BACK
# advert left before its VI_FRONT one, the takeover comes that much less than
# Master_Down_Interval after the last advert the client saw. The two leave in one loop pass, but
# an emulated CPU that is starved can stall between them: 22 ms was seen with two VMs on two cores.
GROUP_SPREAD = 0.05 if os.environ.get("DIRECTORD_IN_VM") else 0.0


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.lab", *args, "--name", LAB],
                          capture_output=True, text=True, timeout=600, cwd=REPO)


def test_sigkill_drill_loses_no_connection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        up = lab("up", "--variant", "nat")
        assert up.returncode == 0, up.stderr
        state = json.loads(Path(f"/run/directord-lab-{LAB}.json").read_text())
        bound = master_down_interval(state["advert_interval"], state["priorities"]["lb2"]) + 0.05 + EMULATION_ALLOWANCE
        mdi = master_down_interval(state["advert_interval"], state["priorities"]["lb2"])
        args = argparse.Namespace(lab=LAB, scenario=["sigkill"], report=str(tmp_path / "drill"), max_takeover=bound,
                                  max_failed_requests=None, max_lost_connections=0, json=True,
                                  directors="directord,keepalived")
        code = run_drill(args)
        out = json.loads(capsys.readouterr().out)
        assert [f["implementation"] for f in out["runs"]] == ["directord", "keepalived"]
        for figures in out["runs"]:
            print(json.dumps(figures, indent=1), file=sys.stderr)
            assert figures["error"] == ""
            assert figures["lost_connections"] == 0 and figures["connections"] > 0
            assert figures["takeover"] is not None and figures["takeover"] <= bound
            assert not figures["resigned"]  # a hard kill: nothing of the master lived on to send priority 0
            # the last advert reached lb2 and the client alike
            assert figures["after_advert"] >= mdi - 0.01 - GROUP_SPREAD
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
