"""The control API: what each command of the control socket asks, and how it is answered.

Each command has a frozen request dataclass, parsed from the JSON object the
socket received and checked against what the daemon runs (`Known`); a request
that does not parse never reaches a handler. The errors are lines for people and
go back to the caller as they are (`directord drain` prints them).
`director.daemon.control` owns the socket and the framing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import structlog

from director.config.diff import vrrp_changes
from director.config.model import Config
from director.daemon.control import ControlError, Handler
from director.daemon.reconcile_loop import ReconcileLoop
from director.daemon.state_store import AdminDrain
from director.daemon.vrrp_child import VrrpProcess, VrrpProcessError
from director.reconcile.desired import dest_key

log = structlog.get_logger("directord")

RELOAD_APPLY_WAIT = 20.0  # seconds a reload request waits for the pass that applies it
DRAIN_USAGE = 'drain needs "address" (string), optional "port" (int) and "service" (string)'

Request = Mapping[str, Any]


@dataclass(frozen=True)
class Known:
    """What requests are checked against: the running config and the VRRP instance
    names (None when the daemon runs no VRRP)."""

    config: Config
    vrrp_instances: frozenset[str] | None


@dataclass(frozen=True)
class StatusRequest:
    @classmethod
    def parse(cls, request: Request, known: Known) -> StatusRequest:
        return cls()


@dataclass(frozen=True)
class ReloadRequest:
    @classmethod
    def parse(cls, request: Request, known: Known) -> ReloadRequest:
        return cls()


@dataclass(frozen=True)
class _DrainFields:
    """The real servers a drain or undrain names (`service` None: in every service)."""

    address: str
    port: int | None = None
    service: str | None = None

    @classmethod
    def parse(cls, request: Request, known: Known) -> Self:
        """The service, if given, must exist."""
        address, port, service = request.get("address"), request.get("port"), request.get("service")
        # true is an int to Python, not a port: drained as port 1, it would then make the
        # state file unreadable (its loader refuses booleans) and be lost with it
        port_ok = port is None or (isinstance(port, int) and not isinstance(port, bool))
        if not isinstance(address, str) or not port_ok or not (service is None or isinstance(service, str)):
            raise ControlError(DRAIN_USAGE)
        if service is not None and known.config.virtual_server(service) is None:
            raise ControlError(f'no virtual_server is named "{service}"')
        return cls(address, port, service)

    def drain(self) -> AdminDrain:
        return AdminDrain(self.address, self.port, self.service)


@dataclass(frozen=True)
class DrainRequest(_DrainFields):
    pass


@dataclass(frozen=True)
class UndrainRequest(_DrainFields):
    """Takes the same arguments as the drain it lifts."""


@dataclass(frozen=True)
class FailoverRequest:
    instance: str
    force: bool = False
    release: bool = False  # lift the hold of an earlier failover instead

    @classmethod
    def parse(cls, request: Request, known: Known) -> FailoverRequest:
        name = request.get("instance")
        if known.vrrp_instances is None:
            raise ControlError("no VRRP instances are configured")
        if not isinstance(name, str) or name not in known.vrrp_instances:
            raise ControlError(f'no VRRP instance is named "{name}"')
        force, release = request.get("force", False), request.get("release", False)
        if not isinstance(force, bool) or not isinstance(release, bool):
            raise ControlError("force and release must be true or false")
        return cls(name, force, release)


PARSERS: dict[str, Callable[[Request, Known], Any]] = {
    "status": StatusRequest.parse, "reload": ReloadRequest.parse, "drain": DrainRequest.parse,
    "undrain": UndrainRequest.parse, "failover": FailoverRequest.parse,
}


def parse(command: str, request: Request, known: Known) -> Any:
    """The request dataclass for `command`; ControlError with the reason when it does not parse."""
    return PARSERS[command](request, known)


def matching(config: Config, drain: AdminDrain) -> list[str]:
    """The configured real servers a drain covers, as "endpoint in service"."""
    return [f"{rs.endpoint} in {vs.name}" for vs in config.virtual_servers for rs in vs.real_servers
            if drain.matches(vs.name, dest_key(rs))]


def _refuse_unsaved(problem: str | None, done: str, matched: list[str]) -> None:
    """A drain that is in force but not on disk would silently end at the next restart:
    the caller hears it as an error (the change itself stays applied)."""
    if problem is not None:
        raise ControlError(f"{done} {', '.join(matched)} now, but not persisted ({problem}): "
                           "a restart would forget it")


class ControlApi:
    """`reload` re-reads the config (the problems, if refused); `status` builds the snapshot."""

    def __init__(self, reconciler: ReconcileLoop, vrrp: VrrpProcess | None,
                 reload: Callable[[], Awaitable[list[str]]], status: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._reconciler = reconciler
        self._vrrp = vrrp
        self._reload = reload
        self._status = status

    def handlers(self) -> dict[str, Handler]:
        """One handler per command, as `director.daemon.control.ControlServer` takes them;
        each command is answered by the method of its name."""
        return {command: functools.partial(self._handle, command) for command in PARSERS}

    async def _handle(self, command: str, request: dict[str, Any]) -> dict[str, Any]:
        known = Known(self._reconciler.config, self._vrrp.names if self._vrrp is not None else None)
        answer: Callable[[Any], Awaitable[dict[str, Any]]] = getattr(self, command)
        return await answer(parse(command, request, known))

    async def status(self, request: StatusRequest) -> dict[str, Any]:
        return await self._status()

    async def reload(self, request: ReloadRequest) -> dict[str, Any]:
        old_instances = self._reconciler.config.vrrp_instances
        began = time.monotonic()
        problems = await self._reload()
        if problems:
            raise ControlError("config rejected, still running the previous one:\n" + "\n".join(problems))
        config = self._reconciler.config
        answer: dict[str, Any] = {"reloaded": config.path,
                                  "vrrp_changes": vrrp_changes(old_instances, config.vrrp_instances)}
        report = await self._reconciler.applied(RELOAD_APPLY_WAIT)  # so the caller knows what the kernel got
        if report is not None:
            answer |= {"changes": [change.describe() for change in report.changes], "errors": report.errors}
        elif self._reconciler.has_kernel:
            answer["pending"] = f"not yet applied to IPVS after {RELOAD_APPLY_WAIT:g}s; see directord status"
        if self._reconciler.last_load_seconds is not None:  # where the time went: reading the file, then the rest
            answer["seconds"] = {"config_load": self._reconciler.last_load_seconds,
                                 "total": time.monotonic() - began}
        return answer

    async def drain(self, request: DrainRequest) -> dict[str, Any]:
        drain, state = request.drain(), self._reconciler.state
        matched = matching(self._reconciler.config, drain)
        if not matched:
            raise ControlError(f"no configured real server matches {drain.address}"
                               + (f":{drain.port}" if drain.port else "")
                               + (f" in {drain.service}" if drain.service else ""))
        unsaved = None
        if drain not in state.admin_drains:
            state.admin_drains.append(drain)
            unsaved = await self._reconciler.save()
        log.info("drained by admin", real_servers=matched)
        self._reconciler.drains_changed()
        _refuse_unsaved(unsaved, "drained", matched)
        return {"drained": matched}

    async def undrain(self, request: UndrainRequest) -> dict[str, Any]:
        drain, state = request.drain(), self._reconciler.state
        before = len(state.admin_drains)
        state.admin_drains = [d for d in state.admin_drains if d != drain]
        if len(state.admin_drains) == before:
            raise ControlError("no matching drain is in place (undrain takes the same arguments as drain)")
        unsaved = await self._reconciler.save()
        matched = matching(self._reconciler.config, drain)
        log.info("undrained by admin", real_servers=matched)
        self._reconciler.drains_changed()
        _refuse_unsaved(unsaved, "undrained", matched)
        return {"undrained": matched}

    async def _refuse_without_backup(self, name: str) -> None:
        """A master that never heard another router on its VRID may have no backup: giving
        up would leave the VIP unowned until its own Master_Down_Interval brings it back."""
        assert self._vrrp is not None
        view = (await self._vrrp.fresh_snapshot())["instances"].get(name, {})
        if view.get("state") == "master" and not view.get("peer_heard"):
            raise ControlError(f"{name}: no other router has been heard on vrid {view.get('vrid')} since start, "
                               "so nothing may take over and the VIPs would be down for a Master_Down_Interval; "
                               "pass --force to give up master anyway")

    async def _release(self, name: str) -> dict[str, Any]:
        assert self._vrrp is not None
        try:
            released = await self._vrrp.release_hold(name)
        except VrrpProcessError as exc:
            raise ControlError(str(exc)) from exc
        if not released:
            raise ControlError(f"{name} holds back from nothing: no failover is in effect")
        log.info("failover hold released by admin", instance=name)
        snapshot = await self._vrrp.fresh_snapshot()
        return {"instance": name, "state": snapshot["instances"][name]["state"], "released": True}

    async def failover(self, request: FailoverRequest) -> dict[str, Any]:
        assert self._vrrp is not None  # FailoverRequest.parse refuses otherwise
        name = request.instance
        if request.release:
            return await self._release(name)
        try:
            if not request.force:
                await self._refuse_without_backup(name)
            handed_over = await self._vrrp.failover(name)
        except VrrpProcessError as exc:
            raise ControlError(str(exc)) from exc
        if not handed_over:
            raise ControlError(f"{name} is not master here; nothing to hand over")
        log.info("failover requested by admin", instance=name, forced=request.force)
        snapshot = await self._vrrp.fresh_snapshot()
        return {"instance": name, "state": snapshot["instances"][name]["state"]}
