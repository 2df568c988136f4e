"""`run` on a filesystem that refuses sockets: the VM's /tmp is the host's over 9p, where
bind() of a unix socket fails with ENXIO. One line, exit 2, no VRRP child left."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from scripts.labkit import sh
from tests.daemon.test_daemon_netns import assert_run_refused


def _filesystem(path: Path) -> str:
    """From the mount table (the innermost mount): statfs over 9p reports the host's filesystem type."""
    return sh(["findmnt", "-n", "-o", "FSTYPE", "-T", str(path)]).split()[-1]


def test_a_socket_directory_that_refuses_sockets_is_one_line(tmp_path: Path) -> None:
    assert os.environ.get("DIRECTORD_IN_VM"), "runs in the VM rig, whose /tmp is 9p"
    shared = Path(tempfile.mkdtemp(prefix="directord-9p-", dir="/tmp"))
    try:
        assert _filesystem(shared) == "9p", _filesystem(shared)
        sock = shared / "control.sock"
        assert_run_refused(tmp_path, sock, f"directord run: cannot create the control socket {sock}: "
                                           "No such device or address")
    finally:
        shutil.rmtree(shared, ignore_errors=True)
