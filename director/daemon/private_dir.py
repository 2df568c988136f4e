"""Directories directord trusts with its state and control socket: whoever can
write one can plant what directord then reads, deletes from the kernel, or answers."""

from __future__ import annotations

import os
import stat


def unsafe_directory(info: os.stat_result) -> str | None:
    """Why a directory that holds directord's state or socket is unsafe, if it is."""
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.geteuid():
        return f"is owned by uid {info.st_uid}, not {os.geteuid()}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None
