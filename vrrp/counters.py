"""One instance's counters, shared by the parts that send and receive for it, so
`directord status` and the metrics read the same numbers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Counters:
    adverts_sent: int = 0
    adverts_received: int = 0
    garps_sent: int = 0
    transitions: int = 0
    send_errors: int = 0
    # v3 adverts whose interval differs from ours: accepted (RFC 5798 adopts the
    # master's interval) but worth showing, as it usually means a config drift.
    interval_mismatch: int = 0
    errors: Counter[str] = field(default_factory=Counter)
