"""Warnings: configs that load and run, but rarely do what their author meant.

`check-config` prints them and still exits 0; the daemon runs such a config as written."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection, Iterator, Mapping

from director.config.advice_tracking import tracking_warnings
from director.config.mail_keys import mail_warnings
from director.config.model import CheckConfig, Config, IPInterface
from director.config.problems import Problem

V2_AUTH_LEN = 8  # bytes of Authentication Data in a VRRPv2 advert (RFC 2338 5.3.10)

# ifname -> the addresses on it, with their prefixes (read over rtnetlink by the caller)
InterfaceAddresses = Callable[[], Mapping[str, Collection[IPInterface]]]


def config_warnings(config: Config, host: InterfaceAddresses | None = None) -> list[Problem]:
    """One problem per suspicious setting; with `host` (checking on the director that will run
    the config) also the programs to run and each VIP against its interface's addresses."""
    on_host: list[Problem] = []
    if host:
        addresses = host()
        on_host = [*_program_warnings(config), *_source_warnings(config, addresses),
                   *_subnet_warnings(config, addresses)]
    return [*_check_warnings(config), *_vip_warnings(config), *tracking_warnings(config, bool(host)),
            *mail_warnings(config), *_auth_warnings(config), *on_host,
            *_login_warnings(config)]


def _check_warnings(config: Config) -> Iterator[Problem]:
    for index, vs in enumerate(config.virtual_servers):
        if vs.check.type == "none" and not any(rs.checks for rs in vs.real_servers):
            yield Problem(("virtual_server", index), 'no health checking (no [virtual_server.check], or type "none"): '
                          "every real server is taken as up")
        for place, check in vs.check_places():
            yield from _one_check_warnings(("virtual_server", index, *place), check)


def _one_check_warnings(path: tuple[str | int, ...], check: CheckConfig) -> Iterator[Problem]:
    if check.type != "none" and check.timeout > check.interval:
        yield Problem((*path, "timeout"), f"{check.timeout:g}s is longer than interval {check.interval:g}s, "
                      "so a slow server is probed again before its last probe ends")
    if check.type == "https" and check.tls_verify is None:
        yield Problem(path, "https without tls_verify: the real server's certificate "
                      "is not verified; set tls_verify = true to verify it, or false to say so")


def _login_warnings(config: Config) -> Iterator[Problem]:
    """Login checks: a radius check that cannot sign, a password others can read."""
    try:
        shared = os.stat(config.path).st_mode & 0o044 if config.path else 0
    except OSError:
        shared = 0
    for index, vs in enumerate(config.virtual_servers):
        check = vs.check
        if check.type == "radius" and not (check.login and (check.secret or check.secret_file)):
            yield Problem(("virtual_server", index, "check"), "a radius check needs login and secret (or "
                          "secret_file): without them every Access-Request fails")
        for key in ("passwd", "secret"):
            if getattr(check, key) and shared:
                yield Problem(("virtual_server", index, "check", key), f"is in a config file other users can read "
                              f"({config.path}); use {key}_file with a file only root reads, or chmod the config")


def _vip_warnings(config: Config) -> Iterator[Problem]:
    owners: dict[str, int] = {}
    for index, vi in enumerate(config.vrrp_instances):
        for vip in vi.virtual_ips:
            other = owners.setdefault(str(vip.ip), index)
            if other != index:
                yield Problem(("vrrp_instance", index, "virtual_ips"),
                              f'{vip.ip} is also a VIP of vrrp_instance "{config.vrrp_instances[other].name}"; '
                              "the two instances fight over it")
    if not config.vrrp_instances:
        return  # IPVS only: the addresses are floated by something else
    for index, vs in enumerate(config.virtual_servers):
        if vs.address is not None and str(vs.address) not in owners:
            yield Problem(("virtual_server", index, "address"),
                          f"{vs.address} is no VRRP instance's VIP, so this director serves it whatever its VRRP state")


def _auth_warnings(config: Config) -> Iterator[Problem]:
    """VRRPv2 carries 8 bytes of password; keepalived truncates a longer auth_pass with a warning, and
    so does directord, so that a pair converted from keepalived keeps authenticating alike."""
    for index, vi in enumerate(config.vrrp_instances):
        size = len(vi.auth_pass.encode()) if vi.auth_pass else 0
        if vi.auth_type and size > V2_AUTH_LEN:
            yield Problem(("vrrp_instance", index, "auth_pass"),
                          f"is {size} bytes long: VRRP carries {V2_AUTH_LEN}, so only the first {V2_AUTH_LEN} "
                          "count (keepalived truncates it alike)")


def _source_warnings(config: Config, addresses: Mapping[str, Collection[IPInterface]]) -> Iterator[Problem]:
    """IPv4 adverts leave from an address of the interface's own (RFC 5798 5.1.1.1): with none
    but the VIPs and no unicast_src, the instance cannot start. Only a warning, since the
    address may come later (DHCP, ifup); a missing interface is an error elsewhere."""
    for index, vi in enumerate(config.vrrp_instances):
        if vi.family != 4 or vi.unicast_src is not None or vi.interface not in addresses:
            continue
        vips = {vip.ip for vip in vi.virtual_ips}
        if not any(a.version == 4 and a.ip not in vips for a in addresses[vi.interface]):
            yield Problem(("vrrp_instance", index, "interface"),
                          f"{vi.interface} has no IPv4 address of its own (beside the VIPs) to send adverts from; "
                          "the instance will not start until it has one (or set unicast_src)")


def _subnet_warnings(config: Config, addresses: Mapping[str, Collection[IPInterface]]) -> Iterator[Problem]:
    """A VIP outside every subnet of its interface is usually a typo: neighbours on the link
    do not expect it there, and it is reachable only through a route someone must add."""
    for index, vi in enumerate(config.vrrp_instances):
        carried = vi.carried_addresses
        vips = {entry.address.ip for entry in carried}
        for position, entry in enumerate(carried):
            dev, vip = entry.dev or vi.interface, entry.address
            networks = [a.network for a in addresses.get(dev, ()) if a.ip not in vips
                        and a.version == vip.version and not a.ip.is_link_local]
            # nothing to compare with on a link without addresses of this family
            if networks and not any(vip.ip in network for network in networks):
                key = "virtual_ips" if position < len(vi.virtual_ips) else "excluded_ips"
                yield Problem(("vrrp_instance", index, key),
                              f"{vip.ip} is outside every subnet of {dev} ({', '.join(map(str, networks))})")


HOOK_KEYS = ("notify", "notify_master", "notify_backup", "notify_fault", "notify_stop")


def _program_warnings(config: Config) -> Iterator[Problem]:
    tables = [("vrrp_instance", config.vrrp_instances), ("vrrp_sync_group", config.vrrp_sync_groups)]
    for table, items in tables:
        for index, item in enumerate(items):
            for key in HOOK_KEYS:
                argv = getattr(item, key, ())
                if argv:
                    yield from _program((table, index, key), argv[0])
    for index, vs in enumerate(config.virtual_servers):
        for place, check in vs.check_places():
            if check.type == "exec" and check.command:
                yield from _program(("virtual_server", index, *place, "command"), check.command[0])
        for place, argv in vs.pool_hooks():
            yield from _program(("virtual_server", index, *place), argv[0])


def _program(path: tuple[str | int, ...], program: str) -> Iterator[Problem]:
    """A program the daemon will run: it must exist and be executable (looked up on PATH when bare)."""
    found = program if os.sep in program else shutil.which(program)
    if found is None or not os.path.exists(found):
        yield Problem(path, f"{program} does not exist")
    elif not os.path.isfile(found) or not os.access(found, os.X_OK):
        yield Problem(path, f"{program} is not an executable file")
