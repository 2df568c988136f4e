"""The failover lab's state file: `python -m scripts.lab up` writes it as the lab grows,
`down` and `status` read it, and `directord drill` reads it and keeps its pids true.

One JSON file per lab in /run, replaced atomically, so a reader never sees half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


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
