"""Pure parts of the I/O edge: frame builders, link-event parsing, the notify hook,
arrival stamps."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import sys
import time
from pathlib import Path

import structlog.testing

from director.config.model import VrrpInstanceConfig
from vrrp import sockets
from vrrp.garp import arp_frame, frames_for, unsolicited_na_frame
from vrrp.notify import instance_commands, run_notify
from vrrp.rtnl import RTM_NEWLINK, link_events

MAC = bytes.fromhex("020000000001")


def test_arp_frames_dissected_by_scapy() -> None:
    from scapy.layers.l2 import ARP, Ether

    vip = ipaddress.IPv4Address("192.0.2.100")
    for reply, op in ((False, 1), (True, 2)):
        pkt = Ether(arp_frame(MAC, vip, reply))
        assert pkt.dst == "ff:ff:ff:ff:ff:ff" and pkt.src == "02:00:00:00:00:01"
        arp = pkt[ARP]
        assert (arp.op, arp.psrc, arp.pdst, arp.hwsrc) == (op, str(vip), str(vip), pkt.src)


def test_unsolicited_na_dissected_by_scapy() -> None:
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import Ether

    src = ipaddress.IPv6Address("fe80::1")
    vip = ipaddress.IPv6Address("fd00::100")
    raw = unsolicited_na_frame(MAC, src, vip)
    pkt = Ether(raw)
    na = pkt[ICMPv6ND_NA]
    assert pkt[IPv6].hlim == 255 and pkt[IPv6].dst == "ff02::1"
    assert (na.R, na.S, na.O, na.tgt) == (0, 0, 1, str(vip))
    assert pkt[ICMPv6NDOptDstLLAddr].lladdr == "02:00:00:00:00:01"
    ref = Ether(raw)
    del ref[ICMPv6ND_NA].cksum
    assert bytes(ref) == raw  # scapy computes the same checksum


def test_frames_for_mixed_families() -> None:
    v4, v6 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("fd00::1")
    assert len(frames_for(MAC, [v4, v6], ipaddress.IPv6Address("fe80::1"))) == 3
    assert len(frames_for(MAC, [v4, v6], None)) == 2


def _link_msg(name: str, flags: int, mtype: int = RTM_NEWLINK) -> bytes:
    attr_data = name.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(attr_data), 3) + attr_data
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("=BxHiII", 0, 1, 5, flags, 0) + attr
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


def test_link_events() -> None:
    data = _link_msg("eth0", 0x41) + _link_msg("eth1", 0x1) + _link_msg("eth2", 0x41, 17)
    assert list(link_events(data)) == [("eth0", True), ("eth1", False), ("eth2", False)]
    assert list(link_events(data[:20])) == []
    assert list(link_events(b"\xff" * 40)) == []


def test_notify_runs_argv_without_shell(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = f"import sys; open({str(out)!r}, 'w').write(' '.join(sys.argv[1:]))"
    cfg = VrrpInstanceConfig("VI_1", "eth0", 1, notify=(sys.executable, "-c", script))
    [command] = instance_commands(cfg, "master", 150)
    assert asyncio.run(run_notify(command)) == 0
    assert out.read_text() == "VI_1 master 150"


def test_notify_is_bounded_in_time() -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    assert asyncio.run(run_notify(argv, timeout=0.3)) is None


def test_notify_timeout_kills_a_grandchild_that_left_the_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    argv = ["/bin/sh", "-c", f"setsid sh -c 'echo $$ > {pids}; exec sleep 30' & sleep 30", "hook"]
    assert asyncio.run(run_notify(argv, timeout=0.5)) is None
    stat = Path(f"/proc/{pids.read_text().strip()}/stat")

    def gone() -> bool:  # a zombie is dead, only not yet reaped by whoever adopted it
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 2
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone()


def test_notify_gets_a_minimal_environment_and_its_exit_code_is_logged(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    out = tmp_path / "env"
    script = f"import os, sys; open({str(out)!r}, 'w').write(' '.join(sorted(os.environ))); sys.exit(3)"
    with structlog.testing.capture_logs() as logs:
        assert asyncio.run(run_notify([sys.executable, "-c", script])) == 3
    assert set(out.read_text().split()) - {"LC_CTYPE"} == {"HOME", "LANG", "PATH"}  # python may add LC_CTYPE
    assert [(e["event"], e["exit"], e["log_level"]) for e in logs] == [("notify ran", 3, "warning")]


def test_a_notify_timeout_kills_what_the_hook_started_too(tmp_path: Path) -> None:
    """The hook's own process group: a child it left running dies with it."""
    pidfile = tmp_path / "child"
    script = f"sleep 30 & echo $! > {pidfile}; wait"
    assert asyncio.run(run_notify(["/bin/sh", "-c", script], timeout=0.5)) is None
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the hook's child survived the timeout"
        time.sleep(0.05)


def test_a_notify_flooding_its_output_is_drained_and_its_first_line_logged() -> None:
    """The hook's output is read as it comes and only its start kept: 32 MB cost no memory
    and cannot block the hook on a full pipe."""
    script = "import sys; print('disk full on /var'); sys.stdout.write('x' * (32 << 20)); sys.exit(2)"
    with structlog.testing.capture_logs() as logs:
        assert asyncio.run(run_notify([sys.executable, "-c", script], timeout=20)) == 2
    [entry] = logs
    assert (entry["event"], entry["exit"], entry["output"]) == ("notify ran", 2, "disk full on /var")


def test_what_a_notify_leaves_behind_in_its_group_dies_when_it_exits(tmp_path: Path) -> None:
    """A child left running in the hook's group (still holding its output) is killed once the
    hook exits, as for exec checks and tracked scripts; the hook's exit is not held back."""
    pidfile = tmp_path / "child"
    started = time.monotonic()
    assert asyncio.run(run_notify(["/bin/sh", "-c", f"sleep 30 & echo $! > {pidfile}; exit 0"], timeout=20)) == 0
    assert time.monotonic() - started < 10
    stat = Path(f"/proc/{int(pidfile.read_text())}/stat")

    def alive() -> bool:
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 5
    while alive():
        assert time.monotonic() < deadline, "the hook's leftover child survived"
        time.sleep(0.05)


def test_notify_missing_program() -> None:
    assert asyncio.run(run_notify(["/nonexistent/hook"])) is None


def _stamp(wall: float) -> list[tuple[int, int, bytes]]:
    sec = int(wall)
    return [(socket.SOL_SOCKET, sockets.SO_TIMESTAMPNS, struct.pack("=qq", sec, int((wall - sec) * 1e9)))]


def test_arrival_moves_the_kernel_stamp_onto_the_monotonic_clock() -> None:
    before = time.monotonic()
    arrived = sockets._arrival(_stamp(time.time() - 0.02))
    assert arrived is not None
    assert before - 0.03 < arrived < time.monotonic() - 0.015


def test_kernel_stamp_reads_the_timespec_on_the_wall_clock() -> None:
    assert sockets.kernel_stamp(_stamp(1700000000.25)) == 1700000000.25
    assert sockets.kernel_stamp([(socket.IPPROTO_IP, sockets.SO_TIMESTAMPNS, bytes(16))]) is None  # another level
    assert sockets.kernel_stamp([]) is None


def test_arrival_distrusts_stamps_from_a_stepped_wall_clock() -> None:
    assert sockets._arrival(_stamp(time.time() - 5)) is None  # clock stepped forward since
    assert sockets._arrival(_stamp(time.time() + 5)) is None  # stepped back
    assert sockets._arrival([]) is None
