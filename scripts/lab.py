"""The failover lab: a client, two directors and three real servers in network namespaces.

    python scripts/lab.py up [--variant nat|dr] [--name directord] [--director directord|keepalived]
    python scripts/lab.py status [--name directord] [--json]
    python scripts/lab.py down [--name directord]

`up` records everything it makes in /run/directord-lab-NAME.json before making it, so `down`
cleans up after a crash too, and `directord drill` can tell a complete lab from a half-built one.
Needs a kernel with ip_vs (run it inside `scripts/vm-run` on hosts without).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labkit import Lab, run, wait_for

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / ".venv" / "bin" / "python")
BUSYBOX = "/bin/busybox"
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


def state_path(name: str) -> Path:
    return Path(f"/run/directord-lab-{name}.json")


def run_dir(name: str) -> Path:
    return Path(f"/run/directord-lab-{name}")


def rs_address(variant: str, index: int) -> str:
    return f"10.0.0.1{index}" if variant == "nat" else f"198.51.100.2{index}"


def lb_address(variant: str, lb: str) -> dict[str, str]:
    n = int(lb[-1])
    out = {"front0": f"198.51.100.1{n}"}
    if variant == "nat":
        out["back0"] = f"10.0.0.{n + 1}"
    return out


# --- configs -------------------------------------------------------------------------------


def directord_config(variant: str, lb: str, rdir: Path, preempt: bool = True) -> str:
    """A director's TOML: VRRP instance(s) in one sync group, both services, sync daemon."""
    sync_if = "back0" if variant == "nat" else "front0"
    instances = [("VI_FRONT", "front0", 51, f"{VIP}/24")]
    if variant == "nat":
        instances.append(("VI_BACK", "back0", 52, f"{BACK_VIP}/24"))
    text = textwrap.dedent(f"""
        [global]
        router_id = "{lb}"
        control_socket = "{rdir}/{lb}/control.sock"
        state_dir = "{rdir}/{lb}/state"
        metrics_listen = ""
        reconcile_interval = "5s"

        [ipvs]
        sync_daemon = {{ interface = "{sync_if}", syncid = {SYNCID} }}
        """)
    for name, ifname, vrid, vip in instances:
        text += textwrap.dedent(f"""
            [[vrrp_instance]]
            name = "{name}"
            interface = "{ifname}"
            vrid = {vrid}
            priority = {PRIORITY[lb]}
            version = 3
            advert_interval = "{int(ADVERT * 1000)}ms"
            preempt = {"true" if preempt else "false"}
            {f'preempt_delay = "{PREEMPT_DELAY}s"' if preempt else ""}
            virtual_ips = ["{vip}"]
            sync_group = "G1"
            garp = {{ repeat = 3, interval = "100ms" }}
            """)
    for service, port in (("web", 80), ("stream", STREAM_PORT)):
        text += textwrap.dedent(f"""
            [[virtual_server]]
            name = "{service}"
            address = "{VIP}"
            port = {port}
            scheduler = "rr"
            method = "{variant}"
              [virtual_server.check]
              type = "tcp"
              interval = "2s"
              timeout = "1s"
              rise = 1
              fall = 2
            """)
        for index in (1, 2, 3):
            text += f'  [[virtual_server.real_server]]\n  address = "{rs_address(variant, index)}"\n  port = {port}\n'
    return text


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
        return [str(REPO / ".venv" / "bin" / "directord"), "run", "-c", str(rdir / lb / f"directord{suffix}.toml")]
    base = rdir / lb
    return ["keepalived", "-n", "-l", "-D", "-f", str(base / f"keepalived{suffix}.conf"),
            "-p", str(base / "keepalived.pid"), "-r", str(base / "vrrp.pid"), "-c", str(base / "checkers.pid")]


# --- building -----------------------------------------------------------------------------


class Recorder:
    """Writes the state file as the lab grows: a crash leaves a file that says what to remove."""

    def __init__(self, name: str, variant: str, director: str) -> None:
        self.path = state_path(name)
        self.state: dict[str, Any] = {
            "name": name, "variant": variant, "director": director, "complete": False,
            "run_dir": str(run_dir(name)), "namespaces": [], "vip": VIP, "stream_port": STREAM_PORT,
            "advert_interval": ADVERT, "priorities": PRIORITY, "servers": {}, "directors": {}, "pids": {},
        }
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.path)

    def netns(self, lab: Lab, suffix: str) -> str:
        self.state["namespaces"].append(lab.name(suffix))
        self.save()
        return lab.netns(suffix)


def link(ns: str, ifname: str, sw: str, peer: str, bridge: str, address: str | None) -> None:
    """A veth from ns (ifname) to the switch namespace (peer, enslaved to bridge)."""
    run(["ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", peer, "netns", sw])
    run(["ip", "link", "set", peer, "master", bridge, "up"], ns=sw)
    if address:
        run(["ip", "addr", "add", address, "dev", ifname], ns=ns)
    run(["ip", "link", "set", ifname, "up"], ns=ns)


def start(lab: Lab, rec: Recorder, key: str, argv: list[str], ns: str, log: Path) -> int:
    with open(log, "ab") as out:
        proc = lab.start(argv, ns=ns, stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO))
    rec.state["pids"][key] = proc.pid
    rec.save()
    return proc.pid


def build(name: str, variant: str, director: str) -> None:
    rdir = run_dir(name)
    shutil.rmtree(rdir, ignore_errors=True)
    rdir.mkdir(parents=True)
    rec = Recorder(name, variant, director)
    lab = Lab(f"{name}-")
    sw = rec.netns(lab, "sw")
    bridges = ["front"] + (["back"] if variant == "nat" else [])
    for bridge in bridges:
        run(["ip", "link", "add", bridge, "type", "bridge", "mcast_snooping", "0"], ns=sw)
        run(["ip", "link", "set", bridge, "up"], ns=sw)
    client = rec.netns(lab, "client")
    link(client, "eth0", sw, "client", "front", f"{CLIENT}/24")
    rec.state["client"] = client
    rec.state["switch"] = sw
    for lb in ("lb1", "lb2"):
        ns = rec.netns(lab, lb)
        for ifname, address in lb_address(variant, lb).items():
            link(ns, ifname, sw, f"{lb}-{ifname[:-1]}", ifname[:-1], f"{address}/24")
        lab.sysctl("net.ipv4.ip_forward", "1", ns=ns)
        lab.sysctl("net.ipv4.vs.sync_threshold", f"3 {SYNC_PERIOD}", ns=ns)
        (rdir / lb).mkdir()
        for preempt in (True, False):
            suffix = "" if preempt else "-nopreempt"
            (rdir / lb / f"directord{suffix}.toml").write_text(directord_config(variant, lb, rdir, preempt))
            (rdir / lb / f"keepalived{suffix}.conf").write_text(keepalived_config(variant, lb, preempt))
        argv = {f"{kind}{'' if preempt else '-nopreempt'}": director_argv(kind, lb, rdir, preempt)
                for kind in ("directord", "keepalived") for preempt in (True, False)}
        rec.state["directors"][lb] = {"namespace": ns, "interfaces": list(lb_address(variant, lb)),
                                      "peers": [f"{lb}-{i[:-1]}" for i in lb_address(variant, lb)],
                                      "argv": argv, "kind": director, "preempt": True}
    www = rdir / "www"
    for index in (1, 2, 3):
        ns = rec.netns(lab, f"rs{index}")
        address = rs_address(variant, index)
        link(ns, "eth0", sw, f"rs{index}", "back" if variant == "nat" else "front", f"{address}/24")
        if variant == "nat":
            run(["ip", "route", "add", "default", "via", BACK_VIP], ns=ns)
        else:
            run(["ip", "addr", "add", f"{VIP}/32", "dev", "lo"], ns=ns)
            for key in ("all", "eth0"):
                lab.sysctl(f"net.ipv4.conf.{key}.arp_ignore", "1", ns=ns)
                lab.sysctl(f"net.ipv4.conf.{key}.arp_announce", "2", ns=ns)
        root = www / f"rs{index}"
        root.mkdir(parents=True)
        (root / "index.html").write_text(f"rs{index}\n")
        start(lab, rec, f"httpd-rs{index}", [BUSYBOX, "httpd", "-f", "-p", "80", "-h", str(root)], ns,
              rdir / f"rs{index}.log")
        start(lab, rec, f"stream-rs{index}", [PYTHON, "-m", "director.drill.streamer", "--port", str(STREAM_PORT)],
              ns, rdir / f"stream-rs{index}.log")
        rec.state["servers"][f"rs{index}"] = {"namespace": ns, "address": address}
    rec.save()
    for lb in ("lb1", "lb2"):  # their start-up is the slowest part under emulation: overlap it
        start_director(rec.state, lb, director)
    for index in (1, 2, 3):
        ns = rec.state["servers"][f"rs{index}"]["namespace"]
        wait_for(lambda ns=ns: _listening(ns, (80, STREAM_PORT)), 180, 1.0, what=f"rs{index} services")
    wait_for(lambda: vip_holder(rec.state) == ["lb1"], 240, 1.0, what="lb1 to hold the VIP")
    wait_for(lambda: _backup_ready(rec.state), 240, 1.0, what="lb2 to run")
    rec.state["complete"] = True
    rec.save()
    lab.processes.clear()  # the lab outlives this process: `down` removes it
    lab.namespaces.clear()


def _listening(ns: str, ports: tuple[int, ...]) -> bool:
    out = run(["ss", "-Hltn"], ns=ns, check=False)
    return all(f":{port} " in out for port in ports)


def _backup_ready(state: dict[str, Any]) -> bool:
    """lb2's daemon is up: its sync daemon (backup) is running in its IPVS table."""
    ns = state["directors"]["lb2"]["namespace"]
    return "backup" in run(["ipvsadm", "-L", "--daemon"], ns=ns, check=False)


def start_director(state: dict[str, Any], lb: str, kind: str, preempt: bool = True) -> int:
    """Start one director daemon in its namespace; its pid goes to the state file."""
    rdir = Path(state["run_dir"])
    ns = state["directors"][lb]["namespace"]
    log = open(rdir / lb / f"{kind}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(["ip", "netns", "exec", ns, *director_argv(kind, lb, rdir, preempt)],
                            start_new_session=True, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
    log.close()
    state["pids"][f"director-{lb}"] = proc.pid
    save_state(state)
    return proc.pid


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def vip_holder(state: dict[str, Any]) -> list[str]:
    """Directors whose namespace holds the front VIP now."""
    return [lb for lb, d in state["directors"].items()
            if f" {state['vip']}/" in run(["ip", "-o", "addr", "show"], ns=d["namespace"], check=False)]


def save_state(state: dict[str, Any]) -> None:
    path = state_path(state["name"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def load_state(name: str) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(name).read_text())
    except (OSError, ValueError):
        return None


# --- commands -----------------------------------------------------------------------------


def down(name: str) -> None:
    """Remove everything `up` made, from the state file and by name prefix (after a crash too)."""
    state = load_state(name) or {}
    for pid in state.get("pids", {}).values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for ns in state.get("namespaces", []):
        for pid in run(["ip", "netns", "pids", ns], check=False).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        run(["ip", "netns", "del", ns], check=False)
    present = set(run(["ip", "netns", "list"], check=False).split())
    for ns in sorted(present & {f"{name}-{suffix}" for suffix in SUFFIXES}):  # made before a crash hid them
        for pid in run(["ip", "netns", "pids", ns], check=False).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        run(["ip", "netns", "del", ns], check=False)
    shutil.rmtree(state.get("run_dir", run_dir(name)), ignore_errors=True)
    state_path(name).unlink(missing_ok=True)


def status(name: str) -> dict[str, Any]:
    state = load_state(name)
    if state is None:
        return {"name": name, "exists": False}
    present = set(run(["ip", "netns", "list"], check=False).split())
    missing = [ns for ns in state["namespaces"] if ns not in present]
    procs = {key: _alive(pid) for key, pid in state["pids"].items()}
    return {"name": name, "exists": True, "complete": state["complete"] and not missing and all(procs.values()),
            "variant": state["variant"], "director": state["director"], "vip_holder": vip_holder(state),
            "missing_namespaces": missing, "processes": procs}


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
        elif not info["exists"]:
            print(f"lab {args.name}: not up")
        else:
            print(f"lab {args.name}: {args.name and info['variant']} with {info['director']}, "
                  f"{'complete' if info['complete'] else 'INCOMPLETE'}; VIP {VIP} on {info['vip_holder'] or 'nobody'}")
            for key, alive in info["processes"].items():
                print(f"  {key:<18} {'running' if alive else 'DEAD'}")
            for ns in info["missing_namespaces"]:
                print(f"  namespace {ns} MISSING")
        return 0 if info.get("complete") else 1
    if not Path("/proc/net/ip_vs").exists():
        print("lab: this kernel has no ip_vs; run it inside the VM: scripts/vm-run -- python scripts/lab.py up",
              file=sys.stderr)
        return 2
    if load_state(args.name) is not None:
        down(args.name)  # leftovers of an earlier run
    try:
        build(args.name, args.variant, args.director)
    except Exception as exc:
        print(f"lab {args.name}: up failed: {exc}", file=sys.stderr)
        return 1
    print(f"lab {args.name}: up ({args.variant}, {args.director}); VIP {VIP} on lb1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
