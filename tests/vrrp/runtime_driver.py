"""Drives VrrpRuntime in-process inside a namespace, the way the director will.

Run as `python -m tests.vrrp.runtime_driver` inside a node namespace whose peer
(priority 100) runs `python -m vrrp`. Prints one JSON object of observations.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from unittest import mock

from director.config.model import GarpConfig, TrackVirtualServer, VrrpInstanceConfig
from vrrp.runtime import VrrpRuntime

CFG = VrrpInstanceConfig(
    name="VI_1",
    interface="eth0",
    vrid=51,
    priority=200,
    advert_interval=0.1,
    virtual_ips=(ipaddress.ip_interface("192.0.2.100/24"),),
    garp=GarpConfig(repeat=1, interval=0.05, refresh=0.2),
    track_virtual_servers=(TrackVirtualServer("web", -150),),
)


async def until(pred: Callable[[], bool], timeout: float) -> bool:
    end = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > end:
            return False
        await asyncio.sleep(0.01)
    return True


async def main() -> dict:
    events: list[list] = []
    rt = VrrpRuntime([CFG], on_transition=lambda n, t: events.append([n, t.new.value]))
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run(stop))

    def state() -> str:
        snap = rt.snapshot()["instances"]
        return snap["VI_1"]["state"] if snap else "none"

    out: dict = {"became_master": await until(lambda: state() == "master", 5.0)}
    # the first gratuitous ARPs follow the VIP add (done on the netlink thread)
    out["first_garps"] = await until(lambda: rt.snapshot()["instances"]["VI_1"]["garps_sent"] >= 2, 1.0)
    out["snapshot"] = rt.snapshot()
    garps = rt.snapshot()["instances"]["VI_1"]["garps_sent"]
    await asyncio.sleep(1.0)
    out["garp_refresh_frames"] = rt.snapshot()["instances"]["VI_1"]["garps_sent"] - garps
    rt.set_tracked_virtual_server("web", False)  # 200 - 150 = 50 < peer's 100
    out["quorum_lost_backup"] = await until(lambda: state() == "backup", 2.0)
    out["quorum_lost_priority"] = rt.snapshot()["instances"]["VI_1"]["effective_priority"]
    rt.set_tracked_virtual_server("web", True)
    out["quorum_back_master"] = await until(lambda: state() == "master", 2.0)
    out["failover_accepted"] = rt.failover("VI_1")
    out["failover_not_master"] = rt.failover("VI_1")
    await asyncio.sleep(1.5)
    out["after_failover_state"] = state()
    out["master_address"] = rt.snapshot()["instances"]["VI_1"]["master_address"]
    stop.set()
    await task
    out["events"] = events
    return out


def vips() -> list[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[3] for line in out.splitlines())


async def reload_flow() -> dict:
    """reconfigure(): in-place VIP swap, priority change, removal, re-addition."""
    events: list[list] = []
    rt = VrrpRuntime([CFG], on_transition=lambda n, t: events.append([n, t.new.value]))
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run(stop))

    def state() -> str:
        snap = rt.snapshot()["instances"]
        return snap["VI_1"]["state"] if "VI_1" in snap else "absent"

    out: dict = {"became_master": await until(lambda: state() == "master", 5.0)}
    swapped = dataclasses.replace(CFG, virtual_ips=(ipaddress.ip_interface("192.0.2.101/24"),))
    await rt.reconfigure([swapped])
    await asyncio.sleep(0.3)
    out["swap_state"] = state()
    out["swap_vips"] = vips()
    out["swap_transitions"] = len(events)
    await rt.reconfigure([dataclasses.replace(swapped, priority=50)])
    out["lower_backup"] = await until(lambda: state() == "backup", 2.0)
    await rt.reconfigure([])
    out["removed"] = state()
    await rt.reconfigure([CFG])
    out["readded_master"] = await until(lambda: state() == "master", 3.0)
    await until(lambda: len(vips()) == 2, 2.0)  # the add runs on the netlink thread, after the transition
    out["final_vips"] = vips()
    stop.set()
    await task
    out["events"] = events
    return out


async def atomic_flow() -> dict:
    """reconfigure() that cannot open a new instance changes nothing: a missing interface,
    an interface without an address, and a socket or a packet sender refused (injected)."""
    events: list[list] = []
    rt = VrrpRuntime([CFG], on_transition=lambda n, t: events.append([n, t.new.value]))
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run(stop))
    out: dict = {"became_master": await until(lambda: _state(rt) == "master", 5.0)}
    await until(lambda: len(vips()) == 2, 2.0)
    before = {"state": "master", "vips": vips(), "transitions": len(events), "sockets": len(rt.sockets._socks)}
    subprocess.run(["ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1"], check=True)
    subprocess.run(["ip", "link", "set", "dum0", "up"], check=True)
    second = dataclasses.replace(CFG, name="VI_2", vrid=52, virtual_ips=(ipaddress.ip_interface("192.0.2.102/24"),))
    attempts = {
        "missing_interface": ([dataclasses.replace(CFG, interface="eth9")], None),
        "no_address": ([dataclasses.replace(CFG, priority=50), dataclasses.replace(second, interface="dum0")], None),
        "socket_refused": ([dataclasses.replace(CFG, priority=50), second], "sockets"),
        "sender_refused": ([dataclasses.replace(CFG, priority=50), second], "sender"),
    }
    for name, (configs, inject) in attempts.items():
        with _refusing(rt, inject):
            try:
                await rt.reconfigure(configs)
                error = None
            except OSError as exc:
                error = str(exc)
        await asyncio.sleep(0.3)
        after = {"state": _state(rt), "vips": vips(), "transitions": len(events), "sockets": len(rt.sockets._socks)}
        out[name] = {"error": error, "unchanged": after == before, "after": after,
                     "priority": rt.snapshot()["instances"]["VI_1"]["priority"]}
    await rt.reconfigure([CFG])  # the config the parent kept: nothing to do
    await asyncio.sleep(0.3)
    out["reapplied_unchanged"] = _state(rt) == "master" and len(events) == before["transitions"]
    stop.set()
    await task
    return out


def _state(rt: VrrpRuntime) -> str:
    snap = rt.snapshot()["instances"]
    return snap["VI_1"]["state"] if "VI_1" in snap else "absent"


@contextlib.contextmanager
def _refusing(rt: VrrpRuntime, part: str | None) -> Iterator[None]:
    """Make opening a new instance fail at its socket or at its packet sender."""
    def refuse(*_args: object) -> None:
        raise OSError(f"{part} refused (injected)")

    with contextlib.ExitStack() as stack:
        if part == "sockets":
            stack.enter_context(mock.patch.object(rt.sockets, "get", refuse))
        elif part == "sender":
            stack.enter_context(mock.patch("vrrp.runtime.PacketSender", refuse))
        yield


if __name__ == "__main__":
    flows = {"reload": reload_flow, "atomic": atomic_flow}
    flow = flows.get(sys.argv[1] if sys.argv[1:] else "", main)
    print(json.dumps(asyncio.run(flow())))
    sys.exit(0)
