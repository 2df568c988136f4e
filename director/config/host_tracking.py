"""Host checks of tracked scripts: the program exists and may be run by its user, who exists.

A script that cannot run would fail every turn and hold its instances down (or in fault)
for a reason nobody sees until it bites, so check-config refuses it here, on the director.
It also warns of a script run as root that another user could change (`tracking_host_warnings`).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
from collections.abc import Iterator

from director.config.model import Config, VrrpScriptConfig
from director.config.problems import Problem


def tracking_problems(config: Config, search_path: str) -> list[Problem]:
    """One problem per script that cannot run on this host. `search_path` is the PATH scripts
    run with (director.hook_env): a bare program name is looked up there, as it will be."""
    return [problem for index, script in enumerate(config.vrrp_scripts)
            for problem in _script(index, script, search_path)]


def _script(index: int, script: VrrpScriptConfig, search_path: str) -> Iterator[Problem]:
    where = ("vrrp_script", index)
    ids, problem = _ids(script)
    if problem is not None:
        yield Problem((*where, problem[0]), problem[1])
    uid, gids = ids if ids is not None else (0, {0})
    program = script.command[0]
    found = program if os.sep in program else shutil.which(program, path=search_path)
    if found is None or not os.path.exists(found):
        on = "" if os.sep in program else f" on PATH {search_path}"
        yield Problem((*where, "command"), f"{program} does not exist{on}")
    elif not os.path.isfile(found) or not _executable(found, uid, gids):
        who = f" by user {script.user}" if script.user is not None else ""
        yield Problem((*where, "command"), f"{found} is not an executable file{who}")


def _ids(script: VrrpScriptConfig) -> tuple[tuple[int, set[int]] | None, tuple[str, str] | None]:
    """(uid, groups) the script runs with, else None and (key, reason) when this host lacks one."""
    if script.user is None:
        return (0, {0}), None
    try:
        entry = pwd.getpwnam(script.user)
    except KeyError:
        return None, ("user", f'no user named "{script.user}" on this host')
    gid = entry.pw_gid
    if script.group is not None:
        try:
            gid = grp.getgrnam(script.group).gr_gid
        except KeyError:
            return None, ("group", f'no group named "{script.group}" on this host')
    return (entry.pw_uid, set(os.getgrouplist(script.user, gid))), None


def _executable(path: str, uid: int, gids: set[int]) -> bool:
    """May `uid` (in `gids`) execute `path`? Root may when any execute bit is set."""
    info = os.stat(path)
    mode = info.st_mode
    if uid == 0:
        return bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if info.st_uid == uid:
        return bool(mode & stat.S_IXUSR)
    if info.st_gid in gids:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


HOOK_KEYS = ("notify", "notify_master", "notify_backup", "notify_fault", "notify_stop")


def tracking_host_warnings(config: Config, search_path: str) -> list[Problem]:
    """Programs run as root that a user other than root can change or replace: that user's code
    would run as root. Errors with [global] script_security (keepalived's enable_script_security
    refuses them), warnings otherwise."""
    return [Problem(where, f"{program} runs as root but {weak} can be changed by a user other than root ({fix})")
            for where, program, fix in _root_programs(config)
            if (weak := _weak_spot(program, search_path)) is not None]


def script_security_problems(config: Config, search_path: str) -> list[Problem]:
    """What [global] script_security refuses: nothing unless it is on."""
    return tracking_host_warnings(config, search_path) if config.global_.script_security else []


def _root_programs(config: Config) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    """Each program the daemon runs as root: where it is configured, its path, and the way out."""
    owned = "make the file and its directories root's and not group or world writable"
    for index, script in enumerate(config.vrrp_scripts):
        if script.user in (None, "root"):
            yield ("vrrp_script", index, "command"), script.command[0], f"set user to run it unprivileged, or {owned}"
    for table, items in (("vrrp_instance", config.vrrp_instances), ("vrrp_sync_group", config.vrrp_sync_groups)):
        for index, item in enumerate(items):
            for key in HOOK_KEYS:
                argv = getattr(item, key, ())
                if argv:
                    yield (table, index, key), argv[0], owned
    for index, vs in enumerate(config.virtual_servers):
        for place, check in vs.check_places():
            if check.type == "exec" and check.command:
                yield ("virtual_server", index, *place, "command"), check.command[0], owned
        for place, argv in vs.pool_hooks():
            yield ("virtual_server", index, *place), argv[0], owned


def _weak_spot(program: str, search_path: str) -> str | None:
    found = program if os.sep in program else shutil.which(program, path=search_path)
    if found is None or not os.path.exists(found):
        return None  # an error of its own (tracking_problems, the advice on programs)
    return _changeable_by_others(os.path.realpath(found))


def _changeable_by_others(path: str) -> str | None:
    """The first of `path` and the directories above it that is not root's or is group/world
    writable (a sticky directory such as /tmp does not count), else None."""
    while True:
        info = os.stat(path)
        sticky = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        if info.st_uid != 0 or (info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky):
            return path
        if path == "/":
            return None
        path = os.path.dirname(path)
