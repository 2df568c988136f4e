"""Tracked scripts, files and processes as keepalived weighs them, for the state machine. Pure.

The daemon runs the scripts, reads the files and counts the processes (the VRRP process
never waits on any of it) and tells this process each one's state: a script (or a process
count) is ok, failed or not yet known; a file holds an integer. Here those states meet each
instance's weights:

- script or process, weight 0: the instance is in FAULT while it fails;
- script or process, weight > 0: the weight is added to the priority while it is ok;
- script or process, weight < 0: the weight is added (the priority drops) while it fails;
- a script not yet known adds nothing and faults nothing;
- file, weight 0: FAULT while the file holds anything but 0;
- file, other weights: value x weight is added, within -254..253; -254 or less is FAULT;
- `reverse` (keepalived's): the shift is subtracted instead of added, and a weight of 0
  faults on the other state (a script or process while ok, a file while it holds 0).

The state machine adds a weight for each tracked object that "fails" and faults on one
of weight 0 (`vrrp.fsm.Instance.set_tracked`); `fsm_input` turns a shift and a fault
into that form. Instances wait in INIT until each file, each process and each script of weight
0 has been heard of once, as keepalived's do (it reads files and counts processes before its
instances start), so that none starts as BACKUP only to drop to FAULT a moment later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from director.config.model import VrrpInstanceConfig

Tracked = tuple[str, int, bool]  # key, weight, ok: what Instance.set_tracked takes
Kind = Literal["script", "file", "process"]
FILE_VALUE_LIMIT = 254  # a file's value is read within -254..254
FILE_FAULT = -254  # value x weight at or below this is a fault
FILE_SHIFT_MAX = 253


def key(kind: Kind, name: str) -> str:
    return f"{kind}:{name}"


def script_effect(weight: int, ok: bool | None, reverse: bool = False) -> tuple[int, bool]:
    """(priority shift, fault) of one script for one instance; ok None: not yet known."""
    if ok is None:
        return 0, False
    if weight == 0:
        return 0, ok if reverse else not ok
    shift = (weight if ok else 0) if weight > 0 else (0 if ok else weight)
    return (-shift if reverse else shift), False


def file_effect(weight: int, value: int | None, reverse: bool = False) -> tuple[int, bool]:
    """(priority shift, fault) of one file for one instance; value None: not yet read."""
    if value is None:
        return 0, False
    value = clamp_file_value(value)
    if weight == 0:
        return 0, (value == 0) if reverse else (value != 0)
    shift = -value * weight if reverse else value * weight
    if shift <= FILE_FAULT:
        return 0, True
    return min(shift, FILE_SHIFT_MAX), False


def clamp_file_value(value: int) -> int:
    return max(-FILE_VALUE_LIMIT, min(FILE_VALUE_LIMIT, value))


def fsm_input(tracked_key: str, shift: int, fault: bool) -> Tracked:
    """The state machine's (key, weight, ok) for a shift or a fault: it counts the weight of
    an object that is not ok, and faults on a weight of 0 that is not ok."""
    if fault:
        return (tracked_key, 0, False)
    return (tracked_key, shift, shift == 0)


def keys(cfg: VrrpInstanceConfig) -> frozenset[str]:
    """The tracked scripts, files and processes the instance names."""
    return frozenset({key("script", t.name) for t in cfg.track_scripts}
                     | {key("file", t.name) for t in cfg.track_files}
                     | {key("process", t.name) for t in cfg.track_processes})


@dataclass
class TrackerStates:
    """What the daemon last said of each script, file and process, by name."""

    scripts: dict[str, bool] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    processes: dict[str, bool] = field(default_factory=dict)

    def set(self, kind: Kind, name: str, value: bool | int) -> None:
        if kind == "script":
            self.scripts[name] = bool(value)
        elif kind == "process":
            self.processes[name] = bool(value)
        else:
            self.files[name] = int(value)

    def effects(self, cfg: VrrpInstanceConfig) -> Iterator[tuple[Kind, str, int, int, bool]]:
        """(kind, name, weight, shift, fault) of each tracked script, file and process of the instance."""
        for script in cfg.track_scripts:
            weight, reverse = script.weight or 0, script.reverse
            yield ("script", script.name, weight, *script_effect(weight, self.scripts.get(script.name), reverse))
        for tracked in cfg.track_files:
            weight, reverse = tracked.weight or 0, tracked.reverse
            yield ("file", tracked.name, weight, *file_effect(weight, self.files.get(tracked.name), reverse))
        for process in cfg.track_processes:
            weight, reverse = process.weight or 0, process.reverse
            yield ("process", process.name, weight,
                   *script_effect(weight, self.processes.get(process.name), reverse))

    def tracked(self, cfg: VrrpInstanceConfig, only: tuple[Kind, str] | None = None) -> list[Tracked]:
        """The state machine's inputs for the instance (or for one of its objects)."""
        return [fsm_input(key(kind, name), shift, fault) for kind, name, _weight, shift, fault in self.effects(cfg)
                if only is None or only == (kind, name)]

    def waiting_for(self, cfg: VrrpInstanceConfig) -> list[str]:
        """The objects an instance must hear of before it starts: every file and process (read
        at once), and each script of weight 0 (it may fault the instance); scripts of other
        weights only shift the priority from their first result on."""
        waiting = [key("file", t.name) for t in cfg.track_files if t.name not in self.files]
        waiting += [key("process", t.name) for t in cfg.track_processes if t.name not in self.processes]
        waiting += [key("script", t.name) for t in cfg.track_scripts
                    if not t.weight and t.name not in self.scripts]
        return waiting
