"""The failover lab as `python -m scripts.lab` builds it and `directord drill` drives it.

The state file: `up` writes it as the lab grows, `down` and `status` read it, the drill
reads it and keeps its pids true. One JSON file per lab in /run, replaced atomically, so a
reader never sees half of one. And the few things both do to the lab's two directors.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from director.drill.proc import in_netns, sh


def state_file(name: str) -> Path:
    return Path(f"/run/directord-lab-{name}.json")


def run_dir(name: str) -> Path:
    """Where a lab keeps its configs, logs and document roots."""
    return Path(f"/run/directord-lab-{name}")


def save_state(state: dict[str, Any]) -> None:
    path = state_file(state["name"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def load_state(name: str) -> dict[str, Any] | None:
    """The lab's state, or None when there is no readable one."""
    try:
        return json.loads(state_file(name).read_text())
    except (OSError, ValueError):
        return None


# --- the two directors, as the lab and the drill both drive them ------------------------------

REPO = Path(__file__).resolve().parents[2]


def start_director(state: dict[str, Any], lb: str, kind: str, preempt: bool = True) -> int:
    """Start lb's `kind` daemon (directord or keepalived) in its namespace, in a session of its
    own: its pid is its process group, so a stop reaches every process of it. The pid, kind
    and preempt go to the state file."""
    info = state["directors"][lb]
    argv = info["argv"][kind + ("" if preempt else "-nopreempt")]
    with open(Path(state["run_dir"]) / lb / f"{kind}.log", "ab") as log:  # the child keeps its own copy
        proc = subprocess.Popen(in_netns(argv, info["namespace"]), start_new_session=True, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO))
    state["pids"][f"director-{lb}"] = proc.pid
    info["kind"], info["preempt"] = kind, preempt
    save_state(state)
    return proc.pid


def vip_holders(state: dict[str, Any]) -> list[str]:
    """Directors whose namespace holds the front VIP now."""
    vip = f" {state['vip']}/"
    return [lb for lb, info in state["directors"].items()
            if vip in sh(["ip", "-o", "addr", "show"], ns=info["namespace"], check=False)]


def sync_daemons(state: dict[str, Any], lb: str) -> str:
    """`ipvsadm -L --daemon` in lb's namespace: which sync threads its kernel runs."""
    return sh(["ipvsadm", "-L", "--daemon"], ns=state["directors"][lb]["namespace"], check=False)
