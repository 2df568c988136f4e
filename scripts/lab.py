"""The failover lab: a client, two directors and three real servers in network namespaces.

    python -m scripts.lab up [--variant nat|dr] [--name directord] [--director directord|keepalived]
    python -m scripts.lab status [--name directord] [--json]
    python -m scripts.lab down [--name directord]

`up` records everything it makes in /run/directord-lab-NAME.json before making it, so `down`
cleans up after a crash too, and `directord drill` can tell a complete lab from a half-built one.
Needs a kernel with ip_vs (run it inside `scripts/vm-run` on hosts without).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from director.config.toml_write import dumps
from director.drill.labstate import (
    load_state,
    run_dir,
    save_state,
    start_director,
    state_file,
    sync_daemons,
    vip_holders,
)
from scripts.labkit import (
    DIRECTORD,
    PYTHON,
    REPO,
    Lab,
    alive,
    dr_real_server,
    httpd_argv,
    kill_group,
    remove_namespace,
    sh,
    wait_for,
)

VIP = "198.51.100.10"
BACK_VIP = "10.0.0.1"
CLIENT = "198.51.100.2"
ADVERT = 0.25
PRIORITY = {"lb1": 150, "lb2": 100}
STREAM_PORT = 9000
SYNCID = 51
# A returning master has an empty connection table; the IPVS sync master re-sends a connection
# every SYNC_PERIOD packets, so it waits PREEMPT_DELAY for the table before it takes over.
PREEMPT_DELAY = 4
SYNC_PERIOD = 10


SUFFIXES = ("sw", "client", "lb1", "lb2", "rs1", "rs2", "rs3")  # every namespace a lab may have


def rs_address(variant: str, index: int) -> str:
    return f"10.0.0.1{index}" if variant == "nat" else f"198.51.100.2{index}"


def lb_address(variant: str, lb: str) -> dict[str, str]:
    n = int(lb[-1])
    out = {"front0": f"198.51.100.1{n}"}
    if variant == "nat":
        out["back0"] = f"10.0.0.{n + 1}"
    return out


# --- configs -------------------------------------------------------------------------------


def directord_config(variant: str, lb: str, rdir: Path, preempt: bool = True,
                     extra: dict[str, Any] | None = None) -> str:
    """A director's TOML: VRRP instance(s) in one sync group, both services, sync daemon;
    `extra` goes into [global] (the chaos soak turns on metrics and moves the state dir)."""
    sync_if = "back0" if variant == "nat" else "front0"
    instances = [("VI_FRONT", "front0", 51, f"{VIP}/24")]
    if variant == "nat":
        instances.append(("VI_BACK", "back0", 52, f"{BACK_VIP}/24"))
    config: dict[str, Any] = {
        "global": {"router_id": lb, "control_socket": f"{rdir}/{lb}/control.sock", "state_dir": f"{rdir}/{lb}/state",
                   "metrics_listen": "", "reconcile_interval": "5s", **(extra or {})},
        "ipvs": {"sync_daemon": {"interface": sync_if, "syncid": SYNCID}},
        "vrrp_instance": [
            {"name": name, "interface": ifname, "vrid": vrid, "priority": PRIORITY[lb], "version": 3,
             "advert_interval": f"{int(ADVERT * 1000)}ms", "preempt": preempt,
             "preempt_delay": f"{PREEMPT_DELAY}s" if preempt else None, "virtual_ips": [vip], "sync_group": "G1",
             "garp": {"repeat": 3, "interval": "100ms"}}
            for name, ifname, vrid, vip in instances],
        "virtual_server": [
            {"name": service, "address": VIP, "port": port, "scheduler": "rr", "method": variant,
             "check": {"type": "tcp", "interval": "2s", "timeout": "1s", "rise": 1, "fall": 2},
             "real_server": [{"address": rs_address(variant, index), "port": port} for index in (1, 2, 3)]}
            for service, port in (("web", 80), ("stream", STREAM_PORT))],
    }
    return dumps(config, inline_keys=frozenset({"sync_daemon", "garp"}))


def keepalived_config(variant: str, lb: str, preempt: bool = True) -> str:
    """The same pair as keepalived sees it: same VRIDs, priorities, interval and services."""
    sync_if = "back0" if variant == "nat" else "front0"
    instances = [("VI_FRONT", "front0", 51, f"{VIP}/24")]
    if variant == "nat":
        instances.append(("VI_BACK", "back0", 52, f"{BACK_VIP}/24"))
    lines = ["global_defs {", f"  router_id {lb}", "  vrrp_version 3",
             f"  lvs_sync_daemon {sync_if} VI_FRONT id {SYNCID}", "}",
             "vrrp_sync_group G1 {", "  group {", *[f"    {i[0]}" for i in instances], "  }", "}"]
    for name, ifname, vrid, vip in instances:
        lines += [f"vrrp_instance {name} {{", "  state BACKUP", f"  interface {ifname}",
                  f"  virtual_router_id {vrid}", f"  priority {PRIORITY[lb]}", f"  advert_int {ADVERT}",
                  f"  preempt_delay {PREEMPT_DELAY}" if preempt else "  nopreempt", "  garp_master_repeat 3",
                  "  virtual_ipaddress {", f"    {vip}", "  }", "}"]
    for port in (80, STREAM_PORT):
        lines += [f"virtual_server {VIP} {port} {{", "  lb_algo rr", f"  lb_kind {variant.upper()}",
                  "  protocol TCP", "  delay_loop 2"]
        for index in (1, 2, 3):
            lines += [f"  real_server {rs_address(variant, index)} {port} {{",
                      "    TCP_CHECK {", "      connect_timeout 1", "    }", "  }"]
        lines += ["}"]
    return "\n".join(lines) + "\n"


def director_argv(kind: str, lb: str, rdir: Path, preempt: bool = True) -> list[str]:
    suffix = "" if preempt else "-nopreempt"
    if kind == "directord":
        return [DIRECTORD, "run", "-c", str(rdir / lb / f"directord{suffix}.toml")]
    base = rdir / lb
    return ["keepalived", "-n", "-l", "-D", "-f", str(base / f"keepalived{suffix}.conf"),
            "-p", str(base / "keepalived.pid"), "-r", str(base / "vrrp.pid"), "-c", str(base / "checkers.pid")]


# --- building -----------------------------------------------------------------------------


class Recorder:
    """Writes the state file as the lab grows: a crash leaves a file that says what to remove."""

    def __init__(self, name: str, variant: str, director: str) -> None:
        self.state: dict[str, Any] = {
            "name": name, "variant": variant, "director": director, "complete": False,
            "run_dir": str(run_dir(name)), "namespaces": [], "vip": VIP, "stream_port": STREAM_PORT,
            "advert_interval": ADVERT, "priorities": PRIORITY, "servers": {}, "directors": {}, "pids": {},
        }
        self.save()

    def save(self) -> None:
        save_state(self.state)

    def netns(self, lab: Lab, suffix: str) -> str:
        self.state["namespaces"].append(lab.name(suffix))
        self.save()
        return lab.netns(suffix)

    def start(self, lab: Lab, key: str, argv: list[str], ns: str, log: Path) -> int:
        with open(log, "ab") as out:
            proc = lab.start(argv, ns=ns, stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO))
        self.state["pids"][key] = proc.pid
        self.save()
        return proc.pid


def link(lab: Lab, ns: str, ifname: str, sw: str, peer: str, bridge: str, address: str) -> None:
    """A cable from ns (ifname) to a port of the switch namespace (peer, enslaved to bridge)."""
    lab.veth(ns, ifname, address, bridge=bridge, bridge_ns=sw, peer=peer)


GlobalExtra = Callable[[str], dict[str, Any]]  # a director's name -> more [global] keys for it


def build_directors(lab: Lab, rec: Recorder, sw: str, variant: str, extra: GlobalExtra | None) -> None:
    """lb1 and lb2 on the front (and for NAT the back) bridge, with both daemons' configs."""
    rdir = Path(rec.state["run_dir"])
    for lb in ("lb1", "lb2"):
        ns = rec.netns(lab, lb)
        for ifname, address in lb_address(variant, lb).items():
            link(lab, ns, ifname, sw, f"{lb}-{ifname[:-1]}", ifname[:-1], f"{address}/24")
        lab.sysctl("net.ipv4.ip_forward", "1", ns=ns)
        lab.sysctl("net.ipv4.vs.sync_threshold", f"3 {SYNC_PERIOD}", ns=ns)
        (rdir / lb).mkdir()
        for preempt in (True, False):
            suffix = "" if preempt else "-nopreempt"
            (rdir / lb / f"directord{suffix}.toml").write_text(
                directord_config(variant, lb, rdir, preempt, extra(lb) if extra else None))
            (rdir / lb / f"keepalived{suffix}.conf").write_text(keepalived_config(variant, lb, preempt))
        argv = {f"{kind}{'' if preempt else '-nopreempt'}": director_argv(kind, lb, rdir, preempt)
                for kind in ("directord", "keepalived") for preempt in (True, False)}
        rec.state["directors"][lb] = {"namespace": ns, "interfaces": list(lb_address(variant, lb)),
                                      "peers": [f"{lb}-{i[:-1]}" for i in lb_address(variant, lb)],
                                      "argv": argv, "kind": rec.state["director"], "preempt": True}


def build_servers(lab: Lab, rec: Recorder, sw: str, variant: str) -> None:
    """rs1..rs3: a busybox httpd and the drill's stream service each; behind the back bridge
    (NAT, routed by the back VIP) or on the front one with the VIP on lo (DR)."""
    rdir = Path(rec.state["run_dir"])
    for index in (1, 2, 3):
        ns = rec.netns(lab, f"rs{index}")
        address = rs_address(variant, index)
        link(lab, ns, "eth0", sw, f"rs{index}", "back" if variant == "nat" else "front", f"{address}/24")
        if variant == "nat":
            sh(["ip", "route", "add", "default", "via", BACK_VIP], ns=ns)
        else:
            dr_real_server(ns, VIP)
        rec.start(lab, f"httpd-rs{index}", httpd_argv(rdir / "www" / f"rs{index}", f"rs{index}\n"), ns,
                  rdir / f"rs{index}.log")
        rec.start(lab, f"stream-rs{index}", [PYTHON, "-m", "director.drill.streamer", "--port", str(STREAM_PORT)],
                  ns, rdir / f"stream-rs{index}.log")
        rec.state["servers"][f"rs{index}"] = {"namespace": ns, "address": address}
    rec.save()


Starter = Callable[[dict[str, Any], str, str], object]  # (lab state, lb, kind): start that director


def build(name: str, variant: str, director: str, extra: GlobalExtra | None = None,
          start: Starter = start_director) -> None:
    """Make the lab and start both directors with `start` (the chaos soak supervises them itself)."""
    rdir = run_dir(name)
    shutil.rmtree(rdir, ignore_errors=True)
    rdir.mkdir(parents=True)
    rec = Recorder(name, variant, director)
    lab = Lab(f"{name}-", private=False)  # the state file and `down` know these names
    sw = rec.netns(lab, "sw")
    for bridge in ["front"] + (["back"] if variant == "nat" else []):
        lab.bridge(bridge, ns=sw, snooping=False)
    client = rec.netns(lab, "client")
    link(lab, client, "eth0", sw, "client", "front", f"{CLIENT}/24")
    rec.state["client"] = client
    rec.state["switch"] = sw
    build_directors(lab, rec, sw, variant, extra)
    build_servers(lab, rec, sw, variant)
    for lb in ("lb1", "lb2"):  # their start-up is the slowest part under emulation: overlap it
        start(rec.state, lb, director)
    for index in (1, 2, 3):
        ns = rec.state["servers"][f"rs{index}"]["namespace"]
        wait_for(lambda ns=ns: _listening(ns, (80, STREAM_PORT)), 180, 1.0, what=f"rs{index} services")
    wait_for(lambda: vip_holders(rec.state) == ["lb1"], 240, 1.0, what="lb1 to hold the VIP")
    wait_for(lambda: "backup" in sync_daemons(rec.state, "lb2"), 240, 1.0, what="lb2 to run")
    rec.state["complete"] = True
    rec.save()
    lab.detach()  # the lab outlives this process: `down` removes it


def _listening(ns: str, ports: tuple[int, ...]) -> bool:
    out = sh(["ss", "-Hltn"], ns=ns, check=False)
    return all(f":{port} " in out for port in ports)


# --- commands -----------------------------------------------------------------------------


def down(name: str) -> None:
    """Remove everything `up` made, from the state file and by name prefix (after a crash too)."""
    state = load_state(name) or {}
    for pid in state.get("pids", {}).values():
        kill_group(pid)
    for ns in state.get("namespaces", []):
        remove_namespace(ns)
    present = set(sh(["ip", "netns", "list"], check=False).split())
    for ns in sorted(present & {f"{name}-{suffix}" for suffix in SUFFIXES}):  # made before a crash hid them
        remove_namespace(ns)
    shutil.rmtree(state.get("run_dir", run_dir(name)), ignore_errors=True)
    state_file(name).unlink(missing_ok=True)


def status(name: str) -> dict[str, Any]:
    state = load_state(name)
    if state is None:
        return {"name": name, "exists": False}
    present = set(sh(["ip", "netns", "list"], check=False).split())
    missing = [ns for ns in state["namespaces"] if ns not in present]
    procs = {key: alive(pid) for key, pid in state["pids"].items()}
    return {"name": name, "exists": True, "complete": state["complete"] and not missing and all(procs.values()),
            "variant": state["variant"], "director": state["director"], "vip_holder": vip_holders(state),
            "missing_namespaces": missing, "processes": procs}


def print_status(name: str, info: dict[str, Any]) -> None:
    if not info["exists"]:
        print(f"lab {name}: not up")
        return
    print(f"lab {name}: {info['variant']} with {info['director']}, "
          f"{'complete' if info['complete'] else 'INCOMPLETE'}; VIP {VIP} on {info['vip_holder'] or 'nobody'}")
    for key, running in info["processes"].items():
        print(f"  {key:<18} {'running' if running else 'DEAD'}")
    for ns in info["missing_namespaces"]:
        print(f"  namespace {ns} MISSING")


def up(name: str, variant: str, director: str) -> int:
    if not Path("/proc/net/ip_vs").exists():
        print("lab: this kernel has no ip_vs; run it inside the VM: scripts/vm-run -- python -m scripts.lab up",
              file=sys.stderr)
        return 2
    if load_state(name) is not None:
        down(name)  # leftovers of an earlier run
    try:
        build(name, variant, director)
    except Exception as exc:
        print(f"lab {name}: up failed: {exc}", file=sys.stderr)
        return 1
    print(f"lab {name}: up ({variant}, {director}); VIP {VIP} on lb1")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="failover lab: client, two directors, three real servers")
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--name", default="directord")
    parser.add_argument("--variant", choices=("nat", "dr"), default="nat")
    parser.add_argument("--director", choices=("directord", "keepalived"), default="directord")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "down":
        down(args.name)
        print(f"lab {args.name}: down")
        return 0
    if args.command == "status":
        info = status(args.name)
        if args.json:
            print(json.dumps(info, indent=1))
        else:
            print_status(args.name, info)
        return 0 if info.get("complete") else 1
    return up(args.name, args.variant, args.director)


if __name__ == "__main__":
    sys.exit(main())
