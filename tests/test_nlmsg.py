"""Unit tests of the shared netlink framing: bytes in, values out, no kernel."""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable

import pytest

import nlmsg
from nlmsg import genl


def test_attr_pads_to_four_bytes() -> None:
    a = nlmsg.attr(5, b"abc")
    assert a == struct.pack("=HH", 7, 5) + b"abc\0"
    assert nlmsg.parse_attrs(a + nlmsg.attr(6, struct.pack("=I", 9))) == {5: b"abc", 6: struct.pack("=I", 9)}


def test_parse_attrs_rejects_overlong_attribute() -> None:
    with pytest.raises(nlmsg.DecodeError):
        nlmsg.parse_attrs(struct.pack("=HH", 40, 1) + b"xxxx")


def test_messages_split_and_errors() -> None:
    ack = struct.pack("=IHHII", 36, nlmsg.NLMSG_ERROR, 0, 7, 0) + struct.pack("=i", 0) + b"\0" * 16
    err = struct.pack("=IHHII", 36, nlmsg.NLMSG_ERROR, 0, 8, 0) + struct.pack("=i", -errno.ESRCH) + b"\0" * 16
    msgs = list(nlmsg.iter_messages(ack + err))
    assert [(k, s, nlmsg.error_code(p)) for k, _f, s, p in msgs] == [
        (nlmsg.NLMSG_ERROR, 7, 0), (nlmsg.NLMSG_ERROR, 8, errno.ESRCH)]


def test_truncated_message_is_an_error() -> None:
    with pytest.raises(nlmsg.DecodeError):
        list(nlmsg.iter_messages(struct.pack("=IHHII", 100, 2, 0, 1, 0)))


def test_transact_skips_stale_answers_and_raises_the_kernel_errno() -> None:
    """A socketpair stands in for the kernel's side: what matters is the reply matching."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, kernel:
        ours.settimeout(1.0)
        stale = struct.pack("=IHHII", 20, 16, 0, 4, 0) + b"late"
        reply = struct.pack("=IHHII", 20, 16, nlmsg.NLM_F_MULTI, 5, 0) + b"data"
        done = struct.pack("=IHHII", 20, nlmsg.NLMSG_DONE, 0, 5, 0) + b"\0" * 4
        kernel.send(stale + reply)
        kernel.send(done)
        assert nlmsg.transact(ours, bytearray(4096), b"req", 5) == [b"data"]
        assert kernel.recv(16) == b"req"
        err = struct.pack("=IHHII", 36, nlmsg.NLMSG_ERROR, 0, 6, 0) + struct.pack("=i", -errno.EEXIST) + b"\0" * 16
        kernel.send(err)
        with pytest.raises(OSError) as info:
            nlmsg.transact(ours, bytearray(4096), b"req", 6)
        assert info.value.errno == errno.EEXIST


def test_next_seq_wraps_past_zero() -> None:
    assert nlmsg.next_seq(1) == 2
    assert nlmsg.next_seq(0xFFFFFFFF) == 1


# Found by tests/fuzz/test_netlink.py: a short integer attribute raised struct.error and a
# name that is not UTF-8 raised UnicodeDecodeError, past every caller's `except DecodeError`.


@pytest.mark.parametrize(("get", "raw"), [(genl.get_u16, b"\x01"), (genl.get_be16, b"\x01"),
                                          (genl.get_u32, b"\x01\x00\x00")])
def test_a_short_integer_attribute_is_a_decode_error(get: Callable[[dict[int, bytes], int], int], raw: bytes) -> None:
    with pytest.raises(nlmsg.DecodeError, match="too few"):
        get({5: raw}, 5)


def test_a_family_reply_with_a_one_byte_id_is_a_decode_error() -> None:
    reply = struct.pack("=BBH", 1, 2, 0) + struct.pack("=HH", 5, genl.CTRL_ATTR_FAMILY_ID) + b"\x22\0\0\0"
    with pytest.raises(nlmsg.DecodeError):
        genl.decode_family_id(reply)


def test_a_name_that_is_not_utf8_is_read_with_replacement_characters() -> None:
    assert genl.get_str({6: b"w\xffc\0junk"}, 6) == "w\ufffdc"
