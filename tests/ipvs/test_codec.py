"""Unit tests of the IPVS netlink codec: bytes in, values out, no kernel."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

import nlmsg
from director.ipvs import codec as c
from director.ipvs.model import (
    SVC_F_HASHED,
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    SVC_F_SCHED1,
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    EditService,
    ServiceKey,
    ServiceSpec,
    SyncDaemon,
    Timeouts,
)
from nlmsg import genl

FAM = 0x1234
V4 = ServiceKey(4, "tcp", "192.0.2.10", 80)
V6 = ServiceKey(6, "udp", "2001:db8::10", 53)
FWM = ServiceKey(4, "", "", 0, 10)


def split(msg: bytes) -> tuple[tuple[int, int, int, int, int], int, dict[int, bytes]]:
    """(nlmsghdr, genl cmd, top-level attributes) of one encoded request."""
    hdr = struct.unpack_from("=IHHII", msg)
    assert hdr[0] == len(msg)
    cmd, version, _ = struct.unpack_from("=BBH", msg, 16)
    assert version == 1
    return hdr, cmd, c.parse_attrs(msg[20:])


def test_nested_sets_flag_and_parse_strips_it() -> None:
    raw = genl.nested(1, genl.attr_u16(2, 7))
    assert struct.unpack_from("=H", raw, 2)[0] == 1 | nlmsg.NLA_F_NESTED
    assert genl.get_u16(c.parse_attrs(c.parse_attrs(raw)[1]), 2) == 7


def test_add_service_ipv4_full_entry() -> None:
    spec = ServiceSpec(V4, "sh", SVC_F_PERSISTENT | SVC_F_SCHED1 | SVC_F_HASHED, 300, 24)
    hdr, cmd, top = split(c.encode_op(FAM, AddService(spec), seq=42))
    assert hdr[1] == FAM and hdr[3] == 42
    assert hdr[2] == nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK
    assert cmd == c.CMD_NEW_SERVICE
    svc = c.parse_attrs(top[c.CMD_ATTR_SERVICE])
    assert genl.get_u16(svc, c.SVC_ATTR_AF) == socket.AF_INET
    assert genl.get_u16(svc, c.SVC_ATTR_PROTOCOL) == 6
    assert svc[c.SVC_ATTR_ADDR] == socket.inet_aton("192.0.2.10") + b"\0" * 12
    assert svc[c.SVC_ATTR_PORT] == b"\x00\x50"  # network order
    assert genl.get_str(svc, c.SVC_ATTR_SCHED_NAME) == "sh"
    flags, mask = struct.unpack("=II", svc[c.SVC_ATTR_FLAGS])
    assert flags == SVC_F_PERSISTENT | SVC_F_SCHED1  # the kernel-owned HASHED bit is never sent
    assert mask == 0x3D
    assert genl.get_u32(svc, c.SVC_ATTR_TIMEOUT) == 300
    assert svc[c.SVC_ATTR_NETMASK] == bytes([255, 255, 255, 0])
    assert c.SVC_ATTR_PE_NAME not in svc


def test_edit_service_ipv6_netmask_is_prefix_length() -> None:
    spec = ServiceSpec(V6, "rr", SVC_F_ONEPACKET, 0, 64, "sip")
    _hdr, cmd, top = split(c.encode_op(FAM, EditService(spec), seq=1))
    assert cmd == c.CMD_SET_SERVICE
    svc = c.parse_attrs(top[c.CMD_ATTR_SERVICE])
    assert genl.get_u16(svc, c.SVC_ATTR_AF) == socket.AF_INET6
    assert svc[c.SVC_ATTR_ADDR] == socket.inet_pton(socket.AF_INET6, "2001:db8::10")
    assert genl.get_u32(svc, c.SVC_ATTR_NETMASK) == 64
    assert genl.get_str(svc, c.SVC_ATTR_PE_NAME) == "sip"


def test_fwmark_service_sends_only_af_and_mark() -> None:
    _hdr, cmd, top = split(c.encode_op(FAM, DeleteService(FWM), seq=1))
    assert cmd == c.CMD_DEL_SERVICE
    svc = c.parse_attrs(top[c.CMD_ATTR_SERVICE])
    assert set(svc) == {c.SVC_ATTR_AF, c.SVC_ATTR_FWMARK}
    assert genl.get_u32(svc, c.SVC_ATTR_FWMARK) == 10


@pytest.mark.parametrize(("method", "num"), [("nat", 0), ("local", 1), ("tun", 2), ("dr", 3)])
def test_add_dest_method_and_thresholds(method: str, num: int) -> None:
    spec = DestSpec(DestKey(4, "10.0.0.11", 8080), method, 65535, 100, 10)  # type: ignore[arg-type]
    _hdr, cmd, top = split(c.encode_op(FAM, AddDest(V4, spec), seq=1))
    assert cmd == c.CMD_NEW_DEST
    assert genl.get_be16(c.parse_attrs(top[c.CMD_ATTR_SERVICE]), c.SVC_ATTR_PORT) == 80
    dest = c.parse_attrs(top[c.CMD_ATTR_DEST])
    assert genl.get_u32(dest, c.DEST_ATTR_FWD_METHOD) == num
    assert genl.get_u32(dest, c.DEST_ATTR_WEIGHT) == 65535
    assert genl.get_u32(dest, c.DEST_ATTR_U_THRESH) == 100
    assert genl.get_u32(dest, c.DEST_ATTR_L_THRESH) == 10
    assert dest[c.DEST_ATTR_PORT] == struct.pack("!H", 8080)
    assert genl.get_u16(dest, c.DEST_ATTR_ADDR_FAMILY) == socket.AF_INET
    assert (c.DEST_ATTR_TUN_TYPE in dest) == (method == "tun")


def test_tunnel_attributes() -> None:
    spec = DestSpec(DestKey(4, "10.0.0.12", 80), "tun", 1, tunnel_type="gue",
                    tunnel_port=6080, tunnel_checksum="remcsum")
    _hdr, _cmd, top = split(c.encode_op(FAM, EditDest(V4, spec), seq=1))
    dest = c.parse_attrs(top[c.CMD_ATTR_DEST])
    assert dest[c.DEST_ATTR_TUN_TYPE][:1] == b"\x01"
    assert dest[c.DEST_ATTR_TUN_PORT] == struct.pack("!H", 6080)
    assert genl.get_u16(dest, c.DEST_ATTR_TUN_FLAGS) == 2


def test_delete_dest_sends_only_the_key() -> None:
    _hdr, cmd, top = split(c.encode_op(FAM, DeleteDest(V6, DestKey(6, "2001:db8::11", 53)), seq=1))
    assert cmd == c.CMD_DEL_DEST
    assert set(c.parse_attrs(top[c.CMD_ATTR_DEST])) == {
        c.DEST_ATTR_ADDR, c.DEST_ATTR_PORT, c.DEST_ATTR_ADDR_FAMILY}


def kernel_service_attrs(**over: bytes) -> bytes:
    """What the kernel puts in IPVS_CMD_ATTR_SERVICE for a v4 service (16-byte address)."""
    attrs = {
        c.SVC_ATTR_AF: struct.pack("=H", socket.AF_INET),
        c.SVC_ATTR_PROTOCOL: struct.pack("=H", 17),
        c.SVC_ATTR_ADDR: socket.inet_aton("198.51.100.7") + b"\0" * 12,
        c.SVC_ATTR_PORT: struct.pack("!H", 5060),
        c.SVC_ATTR_SCHED_NAME: b"wlc\0",
        c.SVC_ATTR_FLAGS: struct.pack("=II", SVC_F_PERSISTENT | SVC_F_HASHED, 0xFFFFFFFF),
        c.SVC_ATTR_TIMEOUT: struct.pack("=I", 600),
        c.SVC_ATTR_NETMASK: bytes([255, 255, 0, 0]),
        c.SVC_ATTR_STATS64: c.attr(1, struct.pack("=Q", 7)) + c.attr(4, struct.pack("=Q", 2**40)),
    }
    attrs.update(over)
    return b"".join(c.attr(k, v) for k, v in attrs.items())


def test_decode_service_reply() -> None:
    payload = struct.pack("=BBH", c.CMD_NEW_SERVICE, 1, 0) + genl.nested(
        c.CMD_ATTR_SERVICE, kernel_service_attrs())
    svc = c.decode_service_message(payload)
    assert svc.spec == ServiceSpec(ServiceKey(4, "udp", "198.51.100.7", 5060), "wlc",
                                   SVC_F_PERSISTENT, 600, 16)
    assert svc.stats.connections == 7 and svc.stats.bytes_in == 2**40


def test_decode_service_falls_back_to_32bit_stats() -> None:
    stats = c.attr(1, struct.pack("=I", 3)) + c.attr(5, struct.pack("=Q", 99))
    attrs = c.parse_attrs(kernel_service_attrs())
    del attrs[c.SVC_ATTR_STATS64]
    attrs[c.SVC_ATTR_STATS] = stats
    svc = c.decode_service(attrs)
    assert svc.stats.connections == 3 and svc.stats.bytes_out == 99


def test_decode_fwmark_ipv6_service() -> None:
    attrs = {
        c.SVC_ATTR_AF: struct.pack("=H", socket.AF_INET6),
        c.SVC_ATTR_FWMARK: struct.pack("=I", 5),
        c.SVC_ATTR_SCHED_NAME: b"mh\0",
        c.SVC_ATTR_FLAGS: struct.pack("=II", 0, 0),
        c.SVC_ATTR_TIMEOUT: struct.pack("=I", 0),
        c.SVC_ATTR_NETMASK: struct.pack("=I", 128),
    }
    spec = c.decode_service(attrs).spec
    assert spec.key == ServiceKey(6, "", "", 0, 5)
    assert spec.netmask == 128 and spec.scheduler == "mh"


@pytest.mark.parametrize(("num", "method"), [(0, "nat"), (1, "local"), (2, "tun"), (3, "dr"),
                                             (4, "bypass")])
def test_decode_dest_reads_raw_forward_method(num: int, method: str) -> None:
    attrs = {
        c.DEST_ATTR_ADDR: socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
        c.DEST_ATTR_PORT: struct.pack("!H", 443),
        c.DEST_ATTR_FWD_METHOD: struct.pack("=I", num | 0x100),  # high bits are not the method
        c.DEST_ATTR_WEIGHT: struct.pack("=I", 0),
        c.DEST_ATTR_U_THRESH: struct.pack("=I", 50),
        c.DEST_ATTR_L_THRESH: struct.pack("=I", 5),
        c.DEST_ATTR_ACTIVE_CONNS: struct.pack("=I", 3),
        c.DEST_ATTR_INACT_CONNS: struct.pack("=I", 4),
        c.DEST_ATTR_PERSIST_CONNS: struct.pack("=I", 5),
        c.DEST_ATTR_ADDR_FAMILY: struct.pack("=H", socket.AF_INET6),
        c.DEST_ATTR_TUN_TYPE: b"\x02",
        c.DEST_ATTR_TUN_PORT: struct.pack("!H", 0),
        c.DEST_ATTR_TUN_FLAGS: struct.pack("=H", 1),
    }
    d = c.decode_dest(attrs, service_family=6)
    assert d.spec == DestSpec(DestKey(6, "2001:db8::1", 443), method, 0, 50, 5,  # type: ignore[arg-type]
                              "gre", 0, "csum")
    assert (d.active_conns, d.inactive_conns, d.persistent_conns) == (3, 4, 5)


def test_decode_dest_without_family_uses_the_service_family() -> None:
    attrs = {c.DEST_ATTR_ADDR: socket.inet_aton("10.1.2.3") + b"\0" * 12,
             c.DEST_ATTR_PORT: struct.pack("!H", 1)}
    assert c.decode_dest(attrs, 4).spec.key == DestKey(4, "10.1.2.3", 1)


@pytest.mark.parametrize("prefix", [0, 1, 8, 24, 31, 32])
def test_ipv4_netmask_round_trip(prefix: int) -> None:
    assert c.netmask_to_prefix(4, c.prefix_to_netmask(4, prefix)) == prefix


def test_single_ack_fast_path() -> None:
    err = struct.pack("=IHHII", 36, nlmsg.NLMSG_ERROR, 0, 8, 0) + struct.pack("=i", -errno.ENOENT) + b"\0" * 16
    assert genl.single_ack(err, len(err)) == (8, errno.ENOENT)
    assert genl.single_ack(err + err, 72) is None  # two messages: the slow path splits them
    done = struct.pack("=IHHII", 20, nlmsg.NLMSG_DONE, 0, 8, 0) + b"\0" * 4
    assert genl.single_ack(done, 20) is None


def test_getfamily_request_and_reply() -> None:
    req = c.getfamily_request(3)
    hdr = struct.unpack_from("=IHHII", req)
    assert hdr[1] == genl.GENL_ID_CTRL and req[16] == genl.CTRL_CMD_GETFAMILY
    assert genl.get_str(c.parse_attrs(req[20:]), genl.CTRL_ATTR_FAMILY_NAME) == "IPVS"
    reply = struct.pack("=BBH", 1, 2, 0) + genl.attr_u16(genl.CTRL_ATTR_FAMILY_ID, 0x22)
    assert genl.decode_family_id(reply) == 0x22


def test_dumps_are_flagged_dump() -> None:
    for msg in (c.service_dump_request(FAM, 1), c.dest_dump_request(FAM, V4, 2),
                c.daemon_dump_request(FAM, 3)):
        assert struct.unpack_from("=IHHII", msg)[2] & c.NLM_F_DUMP == c.NLM_F_DUMP


def test_timeouts_encode_decode() -> None:
    _hdr, cmd, top = split(c.set_config_request(FAM, Timeouts(900, 0, 300), 1))
    assert cmd == c.CMD_SET_CONFIG
    assert genl.get_u32(top, c.CMD_ATTR_TIMEOUT_TCP) == 900
    assert genl.get_u32(top, c.CMD_ATTR_TIMEOUT_TCP_FIN) == 0
    reply = struct.pack("=BBH", 13, 1, 0) + b"".join(
        genl.attr_u32(k, v) for k, v in ((4, 1), (5, 2), (6, 3)))
    assert c.decode_timeouts(reply) == Timeouts(1, 2, 3)


def test_new_daemon_optional_fields() -> None:
    _hdr, cmd, top = split(c.new_daemon_request(FAM, SyncDaemon("backup", "eth1", 51), 1))
    assert cmd == c.CMD_NEW_DAEMON
    inner = c.parse_attrs(top[c.CMD_ATTR_DAEMON])
    assert set(inner) == {c.DAEMON_ATTR_STATE, c.DAEMON_ATTR_MCAST_IFN, c.DAEMON_ATTR_SYNC_ID}
    assert genl.get_u32(inner, c.DAEMON_ATTR_STATE) == 2
    full = SyncDaemon("master", "eth1", 51, 1400, "ff02::81", 8849, 4)
    _hdr, _cmd, top = split(c.new_daemon_request(FAM, full, 1))
    inner = c.parse_attrs(top[c.CMD_ATTR_DAEMON])
    assert genl.get_u16(inner, c.DAEMON_ATTR_SYNC_MAXLEN) == 1400
    assert inner[c.DAEMON_ATTR_MCAST_GROUP6] == socket.inet_pton(socket.AF_INET6, "ff02::81")
    assert genl.get_u16(inner, c.DAEMON_ATTR_MCAST_PORT) == 8849
    assert genl.get_u8(inner, c.DAEMON_ATTR_MCAST_TTL) == 4
    reply = struct.pack("=BBH", c.CMD_NEW_DAEMON, 1, 0) + genl.nested(
        c.CMD_ATTR_DAEMON, top[c.CMD_ATTR_DAEMON])
    assert c.decode_daemon_message(reply) == full


def test_del_daemon() -> None:
    _hdr, cmd, top = split(c.del_daemon_request(FAM, "master", 1))
    assert cmd == c.CMD_DEL_DAEMON
    assert genl.get_u32(c.parse_attrs(top[c.CMD_ATTR_DAEMON]), c.DAEMON_ATTR_STATE) == 1


def test_error_messages_name_the_entry() -> None:
    op = AddDest(V4, DestSpec(DestKey(4, "10.0.0.11", 80)))
    assert c.op_error_message(op, errno.ENOENT) == (
        "add real server 10.0.0.11:80 to tcp 192.0.2.10:80: No such file or directory")
    assert c.describe_op(DeleteService(V6)) == "delete virtual service udp [2001:db8::10]:53"
    assert c.describe_op(EditService(ServiceSpec(FWM))) == "edit virtual service fwmark 10"


UAPI = "/usr/include/linux/ip_vs.h"


def uapi_enums() -> dict[str, int]:
    """Enum values of the installed kernel uapi header, counted the C way."""
    import re
    from pathlib import Path

    values: dict[str, int] = {}
    for body in re.findall(r"enum\s*\{(.*?)\}", Path(UAPI).read_text(), re.S):
        body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
        nxt = 0
        for item in filter(None, (i.strip() for i in body.split(","))):
            name, _, value = item.partition("=")
            nxt = int(value.strip(), 0) if value.strip() else nxt
            values[name.strip()] = nxt
            nxt += 1
    return values


@pytest.mark.skipif(not __import__("os").path.exists(UAPI), reason="no kernel uapi headers installed")
def test_attribute_numbers_match_the_kernel_header() -> None:
    enums = uapi_enums()
    ours = {
        "IPVS_CMD_GET_DAEMON": c.CMD_GET_DAEMON, "IPVS_CMD_GET_CONFIG": c.CMD_GET_CONFIG,
        "IPVS_CMD_ATTR_TIMEOUT_UDP": c.CMD_ATTR_TIMEOUT_UDP,
        "IPVS_SVC_ATTR_PE_NAME": c.SVC_ATTR_PE_NAME, "IPVS_SVC_ATTR_STATS64": c.SVC_ATTR_STATS64,
        "IPVS_SVC_ATTR_NETMASK": c.SVC_ATTR_NETMASK,
        "IPVS_DEST_ATTR_ADDR_FAMILY": c.DEST_ATTR_ADDR_FAMILY,
        "IPVS_DEST_ATTR_STATS64": c.DEST_ATTR_STATS64, "IPVS_DEST_ATTR_TUN_TYPE": c.DEST_ATTR_TUN_TYPE,
        "IPVS_DEST_ATTR_TUN_PORT": c.DEST_ATTR_TUN_PORT,
        "IPVS_DEST_ATTR_TUN_FLAGS": c.DEST_ATTR_TUN_FLAGS,
        "IPVS_DAEMON_ATTR_MCAST_TTL": c.DAEMON_ATTR_MCAST_TTL,
        "IPVS_STATS_ATTR_OUTBPS": len(c.STATS_FIELDS),
    }
    assert {k: enums[k] for k in ours} == ours


# Found by tests/fuzz/test_netlink.py: attributes shorter than their type raised struct.error
# or ValueError, and a scheduler name that is not UTF-8 UnicodeDecodeError, where every caller
# expects nlmsg.DecodeError.


@pytest.mark.parametrize(("kind", "raw"), [
    (c.SVC_ATTR_ADDR, b"\xc0\x00"),  # inet_ntop: ValueError
    (c.SVC_ATTR_FLAGS, b"\x01\x00"),  # struct.error
    (c.SVC_ATTR_NETMASK, b"\xff\xff"),  # struct.error
    (c.SVC_ATTR_PORT, b"\x50"),  # struct.error
    (c.SVC_ATTR_STATS, c.attr(1, b"\x07\x00")),  # a 2-byte counter: struct.error
])
def test_a_service_attribute_too_short_for_its_type_is_a_decode_error(kind: int, raw: bytes) -> None:
    attrs = c.parse_attrs(kernel_service_attrs())
    del attrs[c.SVC_ATTR_STATS64]
    attrs[kind] = raw
    with pytest.raises(nlmsg.DecodeError):
        c.decode_service(attrs)


def test_an_ipv6_dest_with_a_4_byte_address_is_a_decode_error() -> None:
    attrs = {c.DEST_ATTR_ADDR: bytes([10, 0, 0, 1]), c.DEST_ATTR_ADDR_FAMILY: struct.pack("=H", socket.AF_INET6)}
    with pytest.raises(nlmsg.DecodeError):
        c.decode_dest(attrs, 6)


def test_a_scheduler_name_that_is_not_utf8_still_decodes() -> None:
    attrs = c.parse_attrs(kernel_service_attrs())
    attrs[c.SVC_ATTR_SCHED_NAME] = b"\xffrr\0"
    assert c.decode_service(attrs).spec.scheduler == "\ufffdrr"


@pytest.mark.parametrize(("kind", "raw"), [
    (c.DAEMON_ATTR_MCAST_GROUP6, b"\xff\x02"),  # AddressValueError
    (c.DAEMON_ATTR_MCAST_GROUP, b"\xe0"),  # AddressValueError
    (c.DAEMON_ATTR_STATE, b"\x01\x00\x00"),  # struct.error
])
def test_a_daemon_attribute_too_short_for_its_type_is_a_decode_error(kind: int, raw: bytes) -> None:
    inner = {c.DAEMON_ATTR_STATE: struct.pack("=I", 1), c.DAEMON_ATTR_MCAST_IFN: b"eth1\0", kind: raw}
    reply = struct.pack("=BBH", c.CMD_NEW_DAEMON, 1, 0) + genl.nested(
        c.CMD_ATTR_DAEMON, b"".join(c.attr(k, v) for k, v in inner.items()))
    with pytest.raises(nlmsg.DecodeError):
        c.decode_daemon_message(reply)
