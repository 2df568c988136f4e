"""Drives VrrpRuntime in-process inside a namespace, the way the director will.

Run as `python -m tests.vrrp.runtime_driver` inside a node namespace whose peer
(priority 100) runs `python -m vrrp`. Prints one JSON object of observations.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
from collections.abc import Callable

from director.config import GarpConfig, TrackVirtualServer, VrrpInstanceConfig
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


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
    sys.exit(0)
