"""What directord keeps in state_dir across runs: owned services, drains, admin drains.

One JSON file, written atomically (temp file + rename) so a crash never leaves
half a file. Without it a restart would forget which services directord made,
and could neither drain them on removal nor tell them from hand-made ones.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from director.config.model import Config
from director.ipvs.model import DestKey, ServiceKey
from director.reconcile.desired import RealServerState, StateKey, dest_key
from director.reconcile.plan import Book

STATE_FILE = "state.json"
FORMAT_VERSION = 1


class StateError(RuntimeError):
    """state_dir cannot be read or written."""


@dataclass
class AdminDrain:
    """A real server an admin took out; `service` None means every service."""

    address: str
    port: int | None = None
    service: str | None = None

    def matches(self, service_name: str, dest: DestKey) -> bool:
        return (self.address == dest.address
                and (self.port is None or self.port == dest.port)
                and (self.service is None or self.service == service_name))


@dataclass
class State:
    book: Book = field(default_factory=Book)
    admin_drains: list[AdminDrain] = field(default_factory=list)


def admin_drain_states(config: Config, drains: list[AdminDrain]) -> dict[StateKey, RealServerState]:
    """Real-server states for the servers an admin drained (everything else: default)."""
    states: dict[StateKey, RealServerState] = {}
    for vs in config.virtual_servers:
        for rs in vs.real_servers:
            key = dest_key(rs)
            if any(drain.matches(vs.name, key) for drain in drains):
                states[(vs.name, key)] = RealServerState(admin_drained=True)
    return states


def _service_to_json(key: ServiceKey) -> list:
    return [key.family, key.protocol, key.address, key.port, key.fwmark]


def _dest_to_json(key: DestKey | None) -> list | None:
    return None if key is None else [key.family, key.address, key.port]


def encode(state: State) -> dict:
    return {
        "version": FORMAT_VERSION,
        "owned": [{"service": _service_to_json(k), "drain_timeout": t} for k, t in state.book.owned.items()],
        "draining": [{"service": _service_to_json(s), "dest": _dest_to_json(d), "since": t}
                     for (s, d), t in state.book.draining.items()],
        "admin_drains": [{"address": a.address, "port": a.port, "service": a.service}
                         for a in state.admin_drains],
    }


def decode(data: dict) -> State:
    book = Book()
    for item in data.get("owned", []):
        book.owned[ServiceKey(*item["service"])] = float(item["drain_timeout"])
    for item in data.get("draining", []):
        dest = DestKey(*item["dest"]) if item["dest"] is not None else None
        book.draining[(ServiceKey(*item["service"]), dest)] = float(item["since"])
    drains = [AdminDrain(d["address"], d.get("port"), d.get("service")) for d in data.get("admin_drains", [])]
    return State(book, drains)


class StateStore:
    def __init__(self, state_dir: str) -> None:
        self.path = Path(state_dir) / STATE_FILE

    def load(self) -> State:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return State()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {exc.strerror}") from exc
        try:
            return decode(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{self.path}: corrupt state file ({exc}); move it aside to start afresh") from exc

    def save(self, state: State) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as handle:
                json.dump(encode(state), handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.path.with_suffix(".tmp").unlink()
            raise StateError(f"{self.path}: cannot write: {exc.strerror}") from exc
