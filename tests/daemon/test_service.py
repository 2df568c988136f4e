"""The systemd side: sd_notify messages and the unit file (verified by systemd-analyze)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

from director.daemon.sdnotify import Notifier

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "directord.service"


def listener(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    return sock, path


def test_notifier_speaks_the_sd_notify_protocol(tmp_path: Path) -> None:
    sock, path = listener(tmp_path)
    with sock:
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())})
        assert notifier.watchdog_interval == 5.0
        assert notifier.ready("all good")
        assert sock.recv(4096) == b"READY=1\nSTATUS=all good"
        notifier.reloading()
        assert re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=\d+", sock.recv(4096))
        notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        notifier.stopping()
        assert sock.recv(4096) == b"STOPPING=1"


def test_notifier_is_silent_outside_systemd_and_for_another_pids_watchdog() -> None:
    assert not Notifier({}).ready("x")
    assert Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}) \
        .watchdog_interval is None


def test_unit_verifies_and_its_exposure_is_at_most_2_8(tmp_path: Path) -> None:
    directord = shutil.which("directord") or str(Path(__file__).resolve().parents[2] / ".venv/bin/directord")
    unit = tmp_path / "directord.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/directord", directord))
    # --man=no: the man pages of Documentation= exist once the package is installed (tests/packaging)
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                              capture_output=True, text=True)
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout).group(1))
    print(f"systemd-analyze security exposure: {exposure}")
    assert exposure <= 2.8
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "ExecReload=", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "MemoryMax=512M\n", "PrivateTmp=yes",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET", "ProtectKernelTunables=yes",
                 "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_NICE\n"):
        assert line in text
