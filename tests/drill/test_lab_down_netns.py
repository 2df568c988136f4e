"""`python -m scripts.lab down` removes what a crashed `up` left (namespaces, processes, state file) and
nothing of another lab whose name merely shares the prefix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from scripts.labkit import REPO, Lab


def netns() -> set[str]:
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())


def test_down_after_a_crash() -> None:
    name = f"dtl{os.getpid() % 10000}"
    lab = Lab(f"{name}-", private=False)  # what a crashed `up` left, under the names it uses
    made = [lab.netns(suffix) for suffix in ("sw", "lb1", "x-sw")]
    sleeper = subprocess.Popen(["ip", "netns", "exec", f"{name}-lb1", "sleep", "300"])
    state = Path(f"/run/directord-lab-{name}.json")
    rundir = Path(f"/run/directord-lab-{name}")
    (rundir / "lb1").mkdir(parents=True)
    (rundir / "lb1" / "directord.toml").write_text("# configs and logs up wrote\n")
    state.write_text(json.dumps({"name": name, "complete": False, "namespaces": [f"{name}-sw"], "pids": {},
                                 "run_dir": str(rundir)}))
    try:
        down = subprocess.run([sys.executable, "-m", "scripts.lab", "down", "--name", name],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        assert down.returncode == 0, down.stderr
        assert sleeper.wait(timeout=10) != 0
        assert netns() & set(made) == {f"{name}-x-sw"}
        assert not state.exists()
        assert not rundir.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        lab.close()
        state.unlink(missing_ok=True)
        shutil.rmtree(rundir, ignore_errors=True)
