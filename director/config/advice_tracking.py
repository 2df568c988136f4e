"""Warnings about tracked scripts and files: what loads and runs, but rarely as meant."""

from __future__ import annotations

import os
from collections.abc import Iterator

from director.config.model import Config
from director.config.problems import Problem

COMM_MAX = 15  # bytes of a process name the kernel keeps (TASK_COMM_LEN - 1)


def tracking_warnings(config: Config, on_host: bool) -> Iterator[Problem]:
    """Scripts, files and processes no instance tracks (never run, read or counted), a script timeout
    longer than its interval, a process name that can never match, and, on the host, a tracked
    file that does not exist (it reads as 0)."""
    scripts = {t.name for vi in config.vrrp_instances for t in vi.track_scripts}
    files = {t.name for vi in config.vrrp_instances for t in vi.track_files}
    for index, script in enumerate(config.vrrp_scripts):
        if script.name not in scripts:
            yield Problem(("vrrp_script", index), "no vrrp_instance tracks this script, so it never runs "
                          "(name it in an instance's track_scripts)")
        if script.timeout is not None and script.timeout > script.interval:
            yield Problem(("vrrp_script", index, "timeout"),
                          f"{script.timeout:g}s is longer than interval {script.interval:g}s: "
                          "the turns that come while a run is still going are skipped")
    for index, tracked in enumerate(config.track_files):
        if tracked.name not in files:
            yield Problem(("track_file", index), "no vrrp_instance tracks this file, so it is never read "
                          "(name it in an instance's track_files)")
        elif on_host and not os.path.exists(tracked.path):
            yield Problem(("track_file", index, "path"), f"{tracked.path} does not exist: it reads as 0 until it does")
    processes = {t.name for vi in config.vrrp_instances for t in vi.track_processes}
    for index, process in enumerate(config.track_processes):
        if process.name not in processes:
            yield Problem(("track_process", index), "no vrrp_instance tracks these processes, so they are never "
                          "counted (name it in an instance's track_processes)")
        by_name = not process.full_command and process.args is None
        if by_name and len(process.process.encode()) > COMM_MAX:
            yield Problem(("track_process", index, "process"),
                          f'"{process.process}" is longer than the {COMM_MAX} bytes the kernel keeps of a process '
                          "name, so it never matches one: set full_command = true to match argv[0]")

