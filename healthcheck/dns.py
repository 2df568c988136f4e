"""DNS probe: one query; up when the reply's rcode is `expect_rcode` (and, with `expect`,
the answers rendered as zone-file lines match the regex).

Over UDP by default, asked again over TCP when the reply is truncated (TC bit), all within
the one deadline; `transport = "tcp"` asks over TCP only. Both run as callback state
machines on the shared epoll (`_dgram`, `_poll`): no task per check. The wire format is
`dns_message` (sans-IO, bounded).
"""

from __future__ import annotations

import functools
import random
import re
from typing import TYPE_CHECKING

from healthcheck import _poll
from healthcheck import dns_message as dm
from healthcheck._dgram import DgramConn, DgramPlan
from healthcheck._poll import Verdict
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

_ids = random.Random()


@functools.lru_cache(maxsize=256)
def _pattern(expect: str) -> re.Pattern[str]:
    return re.compile(expect)


class _Judge:
    """What every check of one probe compares a reply with."""

    __slots__ = ("check", "counted", "pattern", "question", "want")

    def __init__(self, check: CheckConfig) -> None:
        self.check = check
        self.question = dm.question(check.query_name, check.query_type, check.query_class)
        self.want = dm.RCODES[check.expect_rcode]
        self.pattern = _pattern(check.expect) if check.expect is not None else None
        self.counted: dict[tuple[int, str], str] = {}

    def verdict(self, reply: dm.Reply, how: str) -> Verdict:
        if reply.rcode != self.want:
            return False, f"rcode {reply.rcode_name}, expected {self.check.expect_rcode}{how}"
        key = (reply.answers, how)
        counted = self.counted.get(key)  # the same few reasons every check: made once each
        if counted is None:
            n = reply.answers
            counted = f"rcode {reply.rcode_name}, {n} answer{'' if n == 1 else 's'}{how}"
            if len(self.counted) < 64:
                self.counted[key] = counted
        if self.pattern is not None:
            if self.pattern.search(reply.text) is None:
                return False, f"answers did not match {self.check.expect!r} ({counted})"
            return True, f"answers matched {self.check.expect!r} ({counted})"
        return True, counted

    def judge(self, data: bytes, query: dm.Query, how: str) -> Verdict | None:
        """The verdict on one reply; None: it is truncated (ask again over TCP)."""
        try:
            reply = dm.parse_reply(data, query, self.pattern is not None)
        except dm.DnsParseError as exc:
            return False, f"bad DNS reply{how}: {exc}"
        return None if reply.truncated else self.verdict(reply, how)


def plan(target: Target, check: CheckConfig) -> DgramPlan | _poll.Plan:
    judge = _Judge(check)
    if check.transport == "tcp":
        return _tcp_plan(target, check, judge, " over TCP")
    return DgramPlan(target, check, _udp_request(judge), _udp_judge(judge, target, check),
                     read_phase="waiting for DNS reply")


def _udp_request(judge: _Judge):
    question = judge.question

    def request(conn: DgramConn) -> bytes:
        query = conn.ctx = dm.build_query(_ids.getrandbits(16), question)
        return query.data

    return request


def _udp_judge(judge: _Judge, target: Target, check: CheckConfig):
    def on_datagram(conn: DgramConn, data: bytes):
        query: dm.Query = conn.ctx
        if data[:2] != query.data[:2]:
            return None  # another query's reply (a late one): keep waiting for ours
        verdict = judge.judge(data, query, "")
        return _over_tcp if verdict is None else verdict

    def _over_tcp(conn: DgramConn) -> None:
        plan = conn.plan
        if plan.tcp is None:
            plan.tcp = _tcp_plan(target, check, judge, " over TCP (truncated over UDP)")
        conn.continue_with(plan.tcp)

    return on_datagram


def _tcp_plan(target: Target, check: CheckConfig, judge: _Judge, how: str) -> _poll.Plan:
    """One query per connection, so one id per probe is enough."""
    query = dm.build_query(_ids.getrandbits(16), judge.question)
    return _poll.Plan(target, check, request=dm.tcp_frame(query.data),
                      judge=lambda: _TcpJudge(judge, query, how), read_phase="waiting for DNS reply over TCP")


class _TcpJudge:
    """Sans-IO: a 2-byte length, then that many bytes (at most 65535)."""

    __slots__ = ("buf", "how", "judge", "phase", "query")

    def __init__(self, judge: _Judge, query: dm.Query, how: str) -> None:
        self.judge, self.query, self.how = judge, query, how
        self.phase = "waiting for DNS reply over TCP"
        self.buf = bytearray()

    def feed(self, data: bytes) -> Verdict | None:
        if not data:
            return False, f"connection closed before a whole DNS reply{self.how}"
        buf = self.buf
        buf += data
        length = dm.tcp_length(buf)
        if length is None or len(buf) < 2 + length:
            return None
        verdict = self.judge.judge(bytes(buf[2:2 + length]), self.query, self.how)
        return (False, f"truncated reply{self.how}") if verdict is None else verdict


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await _poll.run(plan(target, check))
