"""The demo: a client, a director and three web servers in namespaces; directord programs
the VIP and the client's requests are spread across the servers. Runs where ip_vs exists
(inside the VM rig on hosts without it)."""

from __future__ import annotations

import collections
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from labkit import Lab, run, wait_for

VIP = "198.51.100.10"
CONFIG = textwrap.dedent(f"""
    [global]
    router_id = "demo"

    [ipvs]
    timeouts = {{ tcp = "900s", tcpfin = "120s", udp = "300s" }}

    [[virtual_server]]
    name = "web"
    address = "{VIP}"
    port = 80
    scheduler = "wrr"
    method = "nat"
      [[virtual_server.real_server]]
      address = "10.0.0.11"
      weight = 3
      [[virtual_server.real_server]]
      address = "10.0.0.12"
      weight = 2
      [[virtual_server.real_server]]
      address = "10.0.0.13"
      weight = 1
""")


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def directord(*args: str) -> None:
    print(f"$ directord {' '.join(args)}", flush=True)
    subprocess.run(["directord", *args], check=False)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="directord-demo-"))
    config = work / "directord.toml"
    config.write_text(CONFIG)
    Lab.sweep("ddemo-")
    with Lab("ddemo-") as lab:
        step("lab: client 198.51.100.2 -> director (VIP 198.51.100.10) -> web1..3 on 10.0.0.0/24")
        client = lab.netns("client")
        lab.veth(client, "eth0", "198.51.100.2/24", peer_address="198.51.100.1/24")
        run(["ip", "addr", "add", f"{VIP}/24", "dev", lab.links[-1]])
        bridge = lab.bridge("br", address="10.0.0.1/24")
        for index in (1, 2, 3):
            ns = lab.netns(f"web{index}")
            lab.veth(ns, "eth0", f"10.0.0.1{index}/24", bridge=bridge)
            run(["ip", "route", "add", "default", "via", "10.0.0.1"], ns=ns)
            docroot = work / f"web{index}"
            docroot.mkdir()
            (docroot / "index.html").write_text(f"web{index}\n")
            lab.start(["/bin/busybox", "httpd", "-f", "-p", "80", "-h", str(docroot)], ns=ns)
        lab.sysctl("net.ipv4.ip_forward", "1")
        for index in (1, 2, 3):
            wait_for(lambda i=index: run(["curl", "-s", f"http://10.0.0.1{i}/"], check=False).strip()
                     == f"web{i}", 30, what=f"web{index}")
        print(CONFIG)

        step("what directord would change (nothing is touched)")
        directord("diff", "-c", str(config), "--state-dir", str(work / "state"))
        step("apply it")
        directord("apply", "-c", str(config), "--state-dir", str(work / "state"))
        step("the kernel's own view: ipvsadm -Ln")
        subprocess.run(["ipvsadm", "-Ln"], check=False)
        step("60 requests from the client to the VIP (weights 3:2:1)")
        answers = collections.Counter(
            run(["curl", "-s", "--max-time", "5", f"http://{VIP}/"], ns=client, check=False).strip() or "error"
            for _ in range(60))
        for name, count in sorted(answers.items()):
            print(f"  {name:<6} {count:>3} {'#' * count}")
        step("apply again: an unchanged config makes zero writes")
        directord("apply", "-c", str(config), "--state-dir", str(work / "state"))
        ok = answers == {"web1": 30, "web2": 20, "web3": 10}
        step("demo " + ("passed" if ok else f"FAILED: unexpected distribution {dict(answers)}"))
    subprocess.run(["ipvsadm", "-C"], check=False)  # the demo VM's table is the demo's own
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
