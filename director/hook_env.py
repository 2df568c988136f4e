"""The environment of the programs directord runs for the admin (exec checks, notify hooks).

A fixed minimum rather than the daemon's own: systemd's NOTIFY_SOCKET and WATCHDOG_*
would let a hook speak for the daemon, and whatever else the daemon was started with
(credentials, proxies) is none of a hook's business."""

from __future__ import annotations

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def hook_environment(**extra: str) -> dict[str, str]:
    """PATH, a UTF-8 C locale and HOME, plus the caller's DIRECTORD_* variables."""
    return {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": "/", **extra}
