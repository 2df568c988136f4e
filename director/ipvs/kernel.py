"""The real IPVS backend: generic netlink to the running kernel.

A thin socket edge over `director.ipvs.codec`. Writes are pipelined: many
requests go in one datagram, each with NLM_F_ACK and its own sequence number,
and the acks are matched back to ops. The in-flight window is sized from the
receive buffer so acks are never dropped. Every recv has a socket timeout.
"""

from __future__ import annotations

import errno as errno_mod
import socket
from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

import nlmsg
from director.ipvs import codec
from director.ipvs.model import (
    IpvsUnavailable,
    KernelService,
    KernelTable,
    Op,
    OpError,
    ServiceKey,
    SyncDaemon,
    Timeouts,
)
from nlmsg import genl

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33

UNAVAILABLE = "the kernel has no IPVS (ip_vs module not loaded or not built)"
T = TypeVar("T")
# The kernel answers a sync daemon start or stop only once its threads have started or exited
# (kthread_stop waits for each): slower than any table operation, seconds under emulation.
SYNC_DAEMON_TIMEOUT = 30.0


class NetlinkIpvs:
    """`IpvsBackend` over a generic netlink socket owned by this object."""

    def __init__(
        self, timeout: float = 10.0, buffer_bytes: int = 32 << 20, family_name: str = "IPVS"
    ) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        try:
            self._sock.bind((0, 0))
            self._sock.settimeout(timeout)
            rcvbuf = self._set_buffer(SO_RCVBUFFORCE, socket.SO_RCVBUF, buffer_bytes)
            self._sndbuf = self._set_buffer(SO_SNDBUFFORCE, socket.SO_SNDBUF, buffer_bytes)
            # Acks without a copy of our request: 36 bytes instead of ~150 each.
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            # One small ack skb costs about 1 KiB of receive buffer (truesize).
            self._window = max(16, min(4096, rcvbuf // 2048))
            self._buf = bytearray(1 << 20)
            self._seq = 0
            self._family = self._resolve_family(family_name)
        except BaseException:
            self._sock.close()
            raise

    # --- socket edge ------------------------------------------------------------

    def _set_buffer(self, force_opt: int, opt: int, size: int) -> int:
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, force_opt, size)
        except PermissionError:
            self._sock.setsockopt(socket.SOL_SOCKET, opt, size)
        return self._sock.getsockopt(socket.SOL_SOCKET, opt)

    def _next_seq(self) -> int:
        self._seq = nlmsg.next_seq(self._seq)
        return self._seq

    def _transact(self, request: bytes, seq: int) -> list[bytes]:
        return nlmsg.transact(self._sock, self._buf, request, seq)

    def _resolve_family(self, name: str) -> int:
        seq = self._next_seq()
        try:
            replies = self._transact(codec.getfamily_request(seq, name), seq)
        except OSError as exc:
            if exc.errno == errno_mod.ENOENT:
                raise IpvsUnavailable(UNAVAILABLE) from None
            raise
        if not replies:
            raise IpvsUnavailable(UNAVAILABLE)
        return genl.decode_family_id(replies[0])

    def _dump(self, build: Callable[[int], bytes], decode: Callable[[bytes], T]) -> list[T]:
        seq = self._next_seq()
        return [decode(p) for p in self._transact(build(seq), seq)]

    # --- IpvsBackend ---------------------------------------------------------------

    def dump(self) -> KernelTable:
        """One service dump, then one destination dump per service."""
        fam = self._family
        services = self._dump(lambda s: codec.service_dump_request(fam, s), codec.decode_service_message)
        table: KernelTable = {}
        for svc in services:
            table[svc.spec.key] = svc
            self._fill_dests(svc)
        return table

    def dump_services(self, keys: Iterable[ServiceKey]) -> tuple[KernelTable, dict[ServiceKey, str]]:
        """The GET_SERVICEs pipelined (one datagram per window, each answered by its message and
        an ack), then one destination dump per service found. A key the kernel has not is left
        out (ESRCH); any other failure is reported for that key and the rest go on."""
        keys = list(keys)
        table: KernelTable = {}
        problems: dict[ServiceKey, str] = {}
        window = max(4, self._window // 4)  # each get is answered by two messages, the reply larger than an ack
        for start in range(0, len(keys), window):
            found, failed = self._get_services(keys[start:start + window])
            problems |= failed
            for key, svc in found.items():
                try:
                    self._fill_dests(svc)
                except (OSError, codec.DecodeError) as exc:
                    problems[key] = f"read real servers of {key}: {getattr(exc, 'strerror', None) or exc}"
                    continue
                table[key] = svc
        return table, problems

    def _get_services(self, keys: list[ServiceKey]) -> tuple[dict[ServiceKey, KernelService], dict[ServiceKey, str]]:
        pending: dict[int, ServiceKey] = {}
        requests = []
        for key in keys:
            seq = self._next_seq()
            pending[seq] = key
            requests.append(codec.service_get_request(self._family, key, seq))
        self._sock.send(b"".join(requests))
        found: dict[ServiceKey, KernelService] = {}
        problems: dict[ServiceKey, str] = {}
        while pending:
            size = self._sock.recv_into(self._buf)  # bounded by the socket's timeout
            for kind, _flags, seq, payload in nlmsg.iter_messages(memoryview(self._buf)[:size]):
                key = pending.get(seq)
                if key is None:
                    continue  # a late answer to an abandoned request
                if kind in (nlmsg.NLMSG_ERROR, nlmsg.NLMSG_DONE):
                    del pending[seq]
                    err = nlmsg.error_code(payload)
                    if err and err not in (errno_mod.ESRCH, errno_mod.ENOENT):
                        problems[key] = f"read service {key}: {errno_mod.errorcode.get(err, str(err))}"
                    continue
                try:
                    found[key] = codec.decode_service_message(payload)
                except codec.DecodeError as exc:
                    problems[key] = f"read service {key}: {exc}"
        for key in problems:
            found.pop(key, None)
        return found, problems

    def _fill_dests(self, svc: KernelService) -> None:
        key = svc.spec.key
        dests = self._dump(
            lambda s: codec.dest_dump_request(self._family, key, s),
            lambda p: codec.decode_dest_message(p, key.family),
        )
        svc.dests = {d.spec.key: d for d in dests}

    def execute(self, ops: list[Op]) -> list[OpError]:
        """Apply ops in order, pipelined; each failure becomes an OpError."""
        errors: dict[int, OpError] = {}
        for start in range(0, len(ops), self._window):
            self._execute_window(ops, start, min(len(ops), start + self._window), errors)
        return [errors[i] for i in sorted(errors)]

    def _execute_window(self, ops: list[Op], start: int, end: int, errors: dict[int, OpError]) -> None:
        pending: dict[int, int] = {}
        chunk: list[bytes] = []
        size = 0
        limit = max(4096, self._sndbuf // 2 - 64)
        for index in range(start, end):
            seq = self._next_seq()
            msg = codec.encode_op(self._family, ops[index], seq)
            if size + len(msg) > limit:
                self._sock.send(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(msg)
            size += len(msg)
            pending[seq] = index
        if chunk:
            self._sock.send(b"".join(chunk))
        self._collect_acks(ops, pending, errors)

    def _collect_acks(self, ops: list[Op], pending: dict[int, int], errors: dict[int, OpError]) -> None:
        while pending:
            size = self._sock.recv_into(self._buf)
            fast = genl.single_ack(self._buf, size)
            acks = [fast] if fast else [
                (seq, nlmsg.error_code(payload))
                for kind, _flags, seq, payload in nlmsg.iter_messages(memoryview(self._buf)[:size])
                if kind == nlmsg.NLMSG_ERROR
            ]
            for seq, err in acks:
                index = pending.pop(seq, None)
                if index is not None and err:
                    op = ops[index]
                    errors[index] = OpError(op, err, codec.op_error_message(op, err))

    def get_timeouts(self) -> Timeouts:
        seq = self._next_seq()
        replies = self._transact(codec.get_config_request(self._family, seq), seq)
        if not replies:
            raise OSError(errno_mod.EPROTO, "IPVS_CMD_GET_CONFIG returned no reply")
        return codec.decode_timeouts(replies[0])

    def set_timeouts(self, timeouts: Timeouts) -> None:
        self._ack(lambda s: codec.set_config_request(self._family, timeouts, s))

    def sync_daemons(self) -> list[SyncDaemon]:
        fam = self._family
        return self._dump(lambda s: codec.daemon_dump_request(fam, s), codec.decode_daemon_message)

    def start_sync_daemon(self, daemon: SyncDaemon) -> None:
        self._ack(lambda s: codec.new_daemon_request(self._family, daemon, s), SYNC_DAEMON_TIMEOUT)

    def stop_sync_daemon(self, state: Literal["master", "backup"]) -> None:
        self._ack(lambda s: codec.del_daemon_request(self._family, state, s), SYNC_DAEMON_TIMEOUT)

    def _ack(self, build: Callable[[int], bytes], timeout: float | None = None) -> None:
        seq = self._next_seq()
        if timeout is None:
            self._transact(build(seq), seq)
            return
        usual = self._sock.gettimeout()
        self._sock.settimeout(max(timeout, usual or 0.0))
        try:
            self._transact(build(seq), seq)
        finally:
            self._sock.settimeout(usual)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> NetlinkIpvs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
