"""The state of what VRRP tracks on this host, as keepalived keeps it. Pure: no I/O, no clock.

`ScriptState` is a vrrp_script's result: unknown until the first run ends (that first result
decides at once), then `RiseFall`: ok after `rise` successes in a row, failed after `fall`
failures in a row. `init_fail` starts it failed instead, so `rise` successes are needed.

`file_value` reads a track file's bytes the way keepalived does (`strtol(buf, NULL, 0)`):
leading blanks, a sign, then decimal, `0x` hexadecimal or `0` octal digits; whatever follows
is ignored, and bytes that hold no number read as 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
