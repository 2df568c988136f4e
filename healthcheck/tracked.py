"""The state of what VRRP tracks on this host, as keepalived keeps it. Pure: no I/O, no clock.

`ScriptState` is a vrrp_script's result: unknown until the first run ends (that first result
decides at once), then `RiseFall`: ok after `rise` successes in a row, failed after `fall`
failures in a row. `init_fail` starts it failed instead, so `rise` successes are needed.

`file_value` reads a track file's bytes the way keepalived does (`strtol(buf, NULL, 0)`):
leading blanks, a sign, then decimal, `0x` hexadecimal or `0` octal digits; whatever follows
is ignored, and bytes that hold no number read as 0.

`ProcessMatch` says whether one process counts for a vrrp_track_process (its name, exactly, or
its argv[0] and arguments, compared as keepalived compares them), and `ProcessState` turns
the count into ok / failed, with keepalived's fork and terminate delays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from healthcheck.riseful import RiseFall

TRACK_FILE_READ = 127  # bytes of a track file that are read (keepalived: a 128-byte buffer)
_NUMBER = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


@dataclass
class ScriptState:
    rise: int
    fall: int
    init_fail: bool = False
    known: bool = field(init=False)
    counter: RiseFall = field(init=False)

    def __post_init__(self) -> None:
        self.known = self.init_fail
        self.counter = RiseFall(self.rise, self.fall, up=False)

    @property
    def ok(self) -> bool | None:
        """True ok, False failed, None not known yet."""
        return self.counter.up if self.known else None

    @property
    def state(self) -> str:
        """`unknown`, `ok`, `failed`, or `rising` / `falling` while a run of results disagrees."""
        if not self.known:
            return "unknown"
        return {"up": "ok", "down": "failed"}.get(self.counter.state, self.counter.state)

    def feed(self, ok: bool) -> bool | None:
        """Take one run's result; the new state (True ok, False failed) if it changed, else None."""
        if not self.known:
            self.known = True
            self.counter.up, self.counter.run = ok, 0
            return ok
        return self.counter.feed(ok)


def file_value(raw: bytes) -> int:
    """The integer at the start of `raw`, as strtol with base 0 reads it; 0 when there is none."""
    match = _NUMBER.match(raw.split(b"\0", 1)[0])
    if match is None:
        return 0
    sign, digits = match.groups()
    if digits[:2] in (b"0x", b"0X"):
        value = int(digits, 16)
    elif digits.startswith(b"0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if sign == b"-" else value


# --- processes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessMatch:
    """What a process must look like. `args` None: only the name (or argv[0]) is compared;
    otherwise argv[0] and the arguments: "exact" all of them and no more, "partial" the first
    len(args) (more may follow), "initial" the same but the last one only as a prefix."""

    process: str
    args: tuple[str, ...] | None = None
    param_match: Literal["exact", "partial", "initial"] = "exact"
    full_command: bool = False

    @property
    def by_cmdline(self) -> bool:
        return self.full_command or self.args is not None

    @property
    def cmdline_bytes(self) -> int:
        """How much of /proc/PID/cmdline a match needs to see (one byte more than a match can use)."""
        return len(self.process.encode()) + sum(len(a.encode()) + 1 for a in self.args or ()) + 2

    def matches(self, comm: str | None, cmdline: bytes | None) -> bool:
        """`comm` is /proc/PID/comm, `cmdline` the start of /proc/PID/cmdline (None: not read)."""
        if not self.by_cmdline:
            return comm == self.process
        if cmdline is None:
            return False
        argv0, _, rest = cmdline.partition(b"\0")
        if argv0 != self.process.encode():
            return False
        if self.args is None:
            return True
        return _params_match(self.args, self.param_match, rest)


def _params_match(args: tuple[str, ...], how: str, rest: bytes) -> bool:
    """keepalived's check_params: the configured arguments, NUL-terminated each, against the
    process's (the bytes after argv[0]'s NUL)."""
    wanted = b"".join(a.encode() + b"\0" for a in args)
    if how == "exact":
        return rest == wanted
    if len(rest) < len(wanted):
        return False
    if how == "partial":
        return rest.startswith(wanted)
    return not args or rest.startswith(wanted[:-1])  # initial: the last one may go on


@dataclass
class ProcessState:
    """ok while quorum <= count <= quorum_max; a change waits `fork_delay` (gained) or
    `terminate_delay` (lost) and is dropped if the count goes back meanwhile. The first count
    decides at once, as keepalived's first reading of /proc does."""

    quorum: int = 1
    quorum_max: int | None = None
    fork_delay: float = 0.0
    terminate_delay: float = 0.0
    ok: bool | None = None
    count: int | None = None
    pending: tuple[bool, float] | None = None  # (the state waited for, when it takes effect)

    def feed(self, count: int, now: float) -> bool | None:
        """Take one count; the new state if it changed now, else None."""
        self.count = count
        want = self.quorum <= count and (self.quorum_max is None or count <= self.quorum_max)
        if self.ok is None or want == self.ok:
            changed = want if self.ok is None else None
            self.ok, self.pending = want, None
            return changed
        delay = self.fork_delay if want else self.terminate_delay
        if self.pending is None or self.pending[0] != want:
            self.pending = (want, now + delay)
        if now >= self.pending[1]:
            self.ok, self.pending = want, None
            return want
        return None

    @property
    def state(self) -> str:
        """`unknown`, `ok`, `failed`, or `gaining` / `losing` while a delay runs."""
        if self.ok is None:
            return "unknown"
        if self.pending is not None:
            return "gaining" if self.pending[0] else "losing"
        return "ok" if self.ok else "failed"
