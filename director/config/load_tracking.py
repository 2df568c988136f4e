"""Load the tracked objects of VRRP: `[[vrrp_script]]`, `[[track_file]]`, `[[track_process]]`,
and the instances' references to them (`track_scripts`, `track_files`, `track_processes`).

A tracked object is defined once at the top level and named by the instances that follow
it, each with its own weight or the object's (keepalived's vrrp_script / track_script and
track_file). Kept apart from `director.config.load`, which calls in here, so that the
model of tracking reads as one piece.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from director.config.model import (
    TrackFile,
    TrackFileConfig,
    TrackProcess,
    TrackProcessConfig,
    TrackScript,
    VrrpScriptConfig,
)
from director.config.problems import Problem
from director.config.read import Reader, Section, boolean, duration, integer, read_fields, required, text

TRACK_WEIGHT = 254  # weights are -254..254; the priority stays within 1..254 whatever they add
MAX_INTERVAL = 3600.0
_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?")  # what useradd accepts, give or take


def _argv(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[str, ...]:
    """A required argv list; a string is refused (no shell ever runs it)."""
    value = s.raw(key, None)
    if value is None:
        s.error(key, 'is required, e.g. ["/usr/local/bin/check-haproxy", "--quick"]')
        return ()
    if isinstance(value, str):
        s.error(key, 'must be an argv list such as ["/usr/bin/pgrep", "-x", "haproxy"]; shell strings are not '
                     'run (write ["/bin/sh", "-c", "..."] to ask for a shell)')
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        s.error(key, "must be a non-empty list of non-empty strings")
        return ()
    return tuple(value)


def _account(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    name = s.string(key, default)
    if isinstance(name, str) and not _USER.fullmatch(name):
        s.error(key, f'"{name}" is not a user or group name')
        return default
    return name


_SCRIPT: dict[str, Reader] = {
    "name": required(text, ""),
    "command": _argv,
    "interval": duration(0.01, MAX_INTERVAL),
    "timeout": duration(0.01, MAX_INTERVAL),
    "weight": integer(-TRACK_WEIGHT, TRACK_WEIGHT),
    "reverse": boolean,
    "rise": integer(1, 1000),
    "fall": integer(1, 1000),
    "init_fail": boolean,
    "user": _account,
    "group": _account,
}


def vrrp_scripts(root: Section) -> tuple[VrrpScriptConfig, ...]:
    return tuple(_vrrp_script(s) for s in root.tables("vrrp_script"))


def _vrrp_script(s: Section) -> VrrpScriptConfig:
    result = VrrpScriptConfig(**read_fields(s, VrrpScriptConfig, _SCRIPT))
    if result.group is not None and result.user is None:
        s.error("group", "needs user (the group a user's script runs with)")
    s.finish()
    return result


def _absolute_path(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str:
    value = s.string(key, default)
    if not isinstance(value, str):
        return ""
    if not value.startswith("/") or "\0" in value:
        s.error(key, f'must be an absolute path, got "{value}"')
    return value


_FILE: dict[str, Reader] = {
    "name": required(text, ""),
    "path": _absolute_path,
    "weight": integer(-TRACK_WEIGHT, TRACK_WEIGHT),
    "reverse": boolean,
    "interval": duration(0.01, MAX_INTERVAL),
    "init_file": integer(-(2**31), 2**31 - 1),
    "init_overwrite": boolean,
}


def track_files(root: Section) -> tuple[TrackFileConfig, ...]:
    return tuple(_track_file(s) for s in root.tables("track_file"))


def _track_file(s: Section) -> TrackFileConfig:
    result = TrackFileConfig(**read_fields(s, TrackFileConfig, _FILE))
    if s.has("init_overwrite") and result.init_file is None:
        s.error("init_overwrite", "needs init_file (the value to write)")
    s.finish()
    return result


def _process_name(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str:
    value = s.string(key, default)
    if not isinstance(value, str):
        return ""
    if not value or "\0" in value:
        s.error(key, "must be a process name (as in /proc/PID/comm) or a program path")
    return value


def _args(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[str, ...] | None:
    value = s.raw(key, None)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and "\0" not in v for v in value):
        s.error(key, 'must be a list of strings, e.g. ["-f", "/etc/haproxy/haproxy.cfg"] ([] for none)')
        return default
    return tuple(value)


_PROCESS: dict[str, Reader] = {
    "name": required(text, ""),
    "process": _process_name,
    "args": _args,
    "param_match": text,
    "full_command": boolean,
    "quorum": integer(0, 65535),
    "quorum_max": integer(0, 65535),
    "weight": integer(-TRACK_WEIGHT, TRACK_WEIGHT),
    "reverse": boolean,
    "fork_delay": duration(0.0, MAX_INTERVAL),
    "terminate_delay": duration(0.0, MAX_INTERVAL),
    "interval": duration(0.01, MAX_INTERVAL),
}


def track_processes(root: Section) -> tuple[TrackProcessConfig, ...]:
    return tuple(_track_process(s) for s in root.tables("track_process"))


def _track_process(s: Section) -> TrackProcessConfig:
    result = TrackProcessConfig(**read_fields(s, TrackProcessConfig, _PROCESS))
    if result.quorum_max is not None and isinstance(result.quorum, int) and result.quorum_max < result.quorum:
        s.error("quorum_max", f"{result.quorum_max} is below quorum {result.quorum}")
    if s.has("param_match") and result.args is None:
        s.error("param_match", "needs args (write args = [] for a process that must have none)")
    s.finish()
    return result


# --- an instance's references --------------------------------------------------------------------


def instance_readers(scripts: Mapping[str, VrrpScriptConfig], files: Mapping[str, TrackFileConfig],
                     processes: Mapping[str, TrackProcessConfig]) -> dict[str, Reader]:
    """The readers of `track_scripts`, `track_files` and `track_processes` for `VrrpInstanceConfig`."""
    def tracked_scripts(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[TrackScript, ...]:
        own = {name: (script.weight, script.reverse) for name, script in scripts.items()}
        return tuple(TrackScript(*item) for item in _references(s, key, own, "vrrp_script"))

    def tracked_files(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[TrackFile, ...]:
        own = {name: (tracked.weight, tracked.reverse) for name, tracked in files.items()}
        return tuple(TrackFile(*item) for item in _references(s, key, own, "track_file"))

    def tracked_processes(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[TrackProcess, ...]:
        own = {name: (tracked.weight, tracked.reverse) for name, tracked in processes.items()}
        return tuple(TrackProcess(*item) for item in _references(s, key, own, "track_process"))

    return {"track_scripts": tracked_scripts, "track_files": tracked_files, "track_processes": tracked_processes}


Own = Mapping[str, tuple[int, bool]]  # name -> the object's own weight and reverse


def _references(s: Section, key: str, weights: Own, table: str) -> list[tuple[str, int, bool]]:
    """Entries written "name" or {name = "...", weight = N, reverse = B}: weight and reverse
    default to the named object's own. Each must name an object of `table`, once."""
    value = s.raw(key, [])
    if not isinstance(value, list):
        s.error(key, 'must be a list of names or {name = "...", weight = N} tables')
        return []
    found: list[tuple[str, int, bool]] = []
    for index, entry in enumerate(value):
        where = f"{key}[{index}]"
        item = _reference(s, where, entry, weights)
        if item is None:
            continue
        if item[0] not in weights:
            s.error(f"{where}.name" if isinstance(entry, dict) else where, f'no {table} is named "{item[0]}"')
        elif any(name == item[0] for name, _, _ in found):
            s.error(where, f'"{item[0]}" is listed twice')
        else:
            found.append(item)
    return found


def _reference(s: Section, key: str, entry: object, weights: Own) -> tuple[str, int, bool] | None:
    if isinstance(entry, str):
        return (entry, *weights.get(entry, (0, False)))
    if not isinstance(entry, dict):
        s.error(key, 'must be a name or {name = "...", weight = N}')
        return None
    sub = Section(entry, s.key_path(key), s.errors)
    name = sub.string("name")
    own_weight, own_reverse = weights.get(name, (0, False)) if isinstance(name, str) else (0, False)
    weight = sub.integer("weight", own_weight, -TRACK_WEIGHT, TRACK_WEIGHT)
    reverse = sub.boolean("reverse", own_reverse)
    sub.finish()
    return (name, weight, reverse) if name else None


def unique_names(scripts: tuple[VrrpScriptConfig, ...], files: tuple[TrackFileConfig, ...],
                 processes: tuple[TrackProcessConfig, ...]) -> list[Problem]:
    problems: list[Problem] = []
    for table, names in (("vrrp_script", [s.name for s in scripts]), ("track_file", [f.name for f in files]),
                         ("track_process", [p.name for p in processes])):
        first: dict[str, int] = {}
        for index, name in enumerate(names):
            if name and name in first:
                problems.append(Problem((table, index, "name"), f"{name} is already used by an earlier {table}",
                                        see=(table, first[name])))
            elif name:
                first[name] = index
    return problems
