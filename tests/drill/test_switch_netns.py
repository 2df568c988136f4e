"""The link-cut edge against the kernel: ports of a switch namespace taken down and up over
our own rtnetlink socket, cross-checked with iproute2."""

from __future__ import annotations

import json
import os
import time

import pytest

from director.drill.switch import Switch
from scripts.labkit import Lab, sh


def link(ns: str, name: str) -> dict:
    (info,) = json.loads(sh(["ip", "-j", "link", "show", name], ns=ns))
    return info


def test_ports_go_down_and_up() -> None:
    with Lab("dtsw") as lab:
        ns = lab.netns("s")
        for port in ("p1", "p2"):
            lab.veth(ns, port, None, bridge_ns=ns, peer=f"{port}b")
        switch = Switch(ns)
        indexes = [switch.index("p1"), switch.index("p2")]
        assert indexes == [link(ns, "p1")["ifindex"], link(ns, "p2")["ifindex"]]
        before = time.time()
        at = switch.set_ports(indexes, up=False)
        assert before <= at <= time.time()
        assert all("UP" not in link(ns, p)["flags"] for p in ("p1", "p2"))
        switch.set_ports(indexes[:1], up=True)
        assert "UP" in link(ns, "p1")["flags"] and "UP" not in link(ns, "p2")["flags"]
        with pytest.raises(OSError):
            switch.index("nosuch")
        with pytest.raises(OSError):
            switch.set_ports([999999], up=False)  # the kernel's refusal reaches the caller
        assert switch.index("lo") == 1  # the namespace's own loopback, not the host's interfaces
        switch.close()


def test_a_missing_namespace_is_an_error_in_the_callers_thread() -> None:
    with pytest.raises(OSError):
        Switch(f"nosuchns{os.getpid()}")
