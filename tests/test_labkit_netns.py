"""The lab toolkit's builder never leaks: what a Lab made is gone after close(), also when the
build failed half way, and Lab.sweep removes what a crashed run left."""

from __future__ import annotations

import subprocess

import pytest

from scripts.labkit import IFNAMSIZ, Lab, alive, sh


def namespaces() -> set[str]:
    return {line.split()[0] for line in sh(["ip", "netns", "list"]).splitlines() if line.strip()}


def root_links() -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in sh(["ip", "-o", "link", "show"]).splitlines()}


def test_close_removes_namespaces_links_and_process_groups_after_a_failure() -> None:
    lab = Lab("dtk")
    ns = lab.netns("a")
    peer = lab.veth(ns, "eth0", "192.0.2.1/24", peer_address="192.0.2.2/24")
    bridge = lab.bridge("br")
    # a process and the child it forked: the whole group goes
    parent = lab.start(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    inside = lab.start(["sleep", "300"], ns=ns)
    assert {peer, bridge} <= root_links() and ns in namespaces()
    with pytest.raises(RuntimeError, match="File exists"):
        lab.veth(ns, "eth0", None)  # the build fails half way
    lab.close()
    assert ns not in namespaces()
    assert not {peer, bridge} & root_links()
    assert parent.poll() is not None and inside.poll() is not None
    assert not alive(child)


def test_names_are_private_and_fit_the_kernel() -> None:
    with Lab("dtk") as one, Lab("dtk") as two:
        assert one.prefix != two.prefix and one.prefix.startswith("dtk")
        ns = one.netns("a-rather-long-namespace-name")
        peer = one.veth(ns, "eth0", None)
        assert len(peer) <= IFNAMSIZ and peer.startswith(one.prefix)
        assert peer in root_links()
    assert not any(name.startswith((one.prefix, two.prefix)) for name in namespaces() | root_links())


def test_sweep_removes_what_a_crashed_run_left() -> None:
    lab = Lab("dtk")
    ns = lab.netns("a")
    peer = lab.veth(ns, "eth0", None)
    sleeper = lab.start(["sleep", "300"], ns=ns)
    lab.detach()  # as if the process had died: nothing will close it
    Lab.sweep(lab.prefix)
    assert ns not in namespaces() and peer not in root_links()
    assert sleeper.wait(timeout=10) != 0
