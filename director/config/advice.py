"""Warnings: configs that load and run, but rarely do what their author meant.

`check-config` prints them and still exits 0; the daemon runs such a config as written."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

from director.config.model import Config, VirtualServerConfig


def config_warnings(config: Config, on_this_host: bool = True) -> list[str]:
    """One "entry: reason" line per suspicious setting; programs are looked for only on the
    host that will run them."""
    programs = _program_warnings(config) if on_this_host else ()
    return [*_check_warnings(config), *_vip_warnings(config), *programs]


def _vs_label(vs: VirtualServerConfig) -> str:
    return f'virtual_server "{vs.name}"'


def _check_warnings(config: Config) -> Iterator[str]:
    for vs in config.virtual_servers:
        if vs.check.type == "none":
            yield (f"{_vs_label(vs)}: no health checking (no [virtual_server.check], or type \"none\"): "
                   "every real server is taken as up")
        elif vs.check.timeout > vs.check.interval:
            yield (f"{_vs_label(vs)}.check.timeout: {vs.check.timeout:g}s is longer than interval "
                   f"{vs.check.interval:g}s, so a slow server is probed again before its last probe ends")


def _vip_warnings(config: Config) -> Iterator[str]:
    owners: dict[str, str] = {}
    for vi in config.vrrp_instances:
        for vip in vi.virtual_ips:
            other = owners.setdefault(str(vip.ip), vi.name)
            if other != vi.name:
                yield (f'vrrp_instance "{vi.name}".virtual_ips: {vip.ip} is also a VIP of vrrp_instance "{other}"; '
                       "the two instances fight over it")
    if not config.vrrp_instances:
        return  # IPVS only: the addresses are floated by something else
    for vs in config.virtual_servers:
        if vs.address is not None and str(vs.address) not in owners:
            yield (f"{_vs_label(vs)}.address: {vs.address} is no VRRP instance's VIP, so this director serves it "
                   "whatever its VRRP state")


def _program_warnings(config: Config) -> Iterator[str]:
    for vi in config.vrrp_instances:
        if vi.notify:
            yield from _program(f'vrrp_instance "{vi.name}".notify', vi.notify[0])
    for vs in config.virtual_servers:
        if vs.check.type == "exec" and vs.check.command:
            yield from _program(f"{_vs_label(vs)}.check.command", vs.check.command[0])


def _program(key: str, program: str) -> Iterator[str]:
    """A program the daemon will run: it must exist and be executable (looked up on PATH when bare)."""
    path = program if os.sep in program else shutil.which(program)
    if path is None or not os.path.exists(path):
        yield f"{key}: {program} does not exist"
    elif not os.path.isfile(path) or not os.access(path, os.X_OK):
        yield f"{key}: {program} is not an executable file"
