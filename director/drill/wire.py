"""What the client side of the lab sees on the wire: VRRP adverts and gratuitous ARPs for the
VIP, each with the kernel's receive time.

    python -m director.drill.wire --ifname eth0 --vip 198.51.100.10

Run inside the lab's client namespace. Prints one JSON line per packet of interest:
{"t": ..., "kind": "advert", "mac": ..., "vrid": 51, "priority": 150} or
{"t": ..., "kind": "garp", "mac": ...}. `t` is the kernel's receive timestamp (SO_TIMESTAMPNS,
CLOCK_REALTIME): the same clock as the drill's kill instant (`time.time()`), and immune to this
reader being scheduled late under emulation. A VIP add seen by `ip monitor` is only known once
a userspace reader gets to run; the backup's gratuitous ARP reaching the client is the moment
the client can actually use the new master.
"""

from __future__ import annotations

import argparse
import ctypes
import ipaddress
import json
import socket
import struct
import sys

from vrrp.sockets import SO_TIMESTAMPNS, STAMP_SPACE, kernel_stamp

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
IPPROTO_VRRP = 112
SO_ATTACH_FILTER = 26
# Classic BPF run by the kernel on every frame: ARP, or IPv4 carrying VRRP; the rest (the load's
# own traffic, hundreds of frames a second) never reaches this process.
ONLY_ARP_AND_VRRP = (
    (0x28, 0, 0, 12),  # ldh [12]: ethertype
    (0x15, 3, 0, ETH_P_ARP),  # ARP: accept
    (0x15, 0, 3, ETH_P_IP),  # not IPv4: drop
    (0x30, 0, 0, 23),  # ldb [23]: IPv4 protocol
    (0x15, 0, 1, IPPROTO_VRRP),  # VRRP: accept, else drop
    (0x06, 0, 0, 0xFFFF),  # accept
    (0x06, 0, 0, 0),  # drop
)


def parse(frame: bytes, vip: bytes) -> dict | None:
    """A VRRP advert or a gratuitous ARP for `vip` (4 packed bytes) as a dict; else None."""
    if len(frame) < 14:
        return None
    src_mac = frame[6:12].hex(":")
    (ethertype,) = struct.unpack("!H", frame[12:14])
    body = frame[14:]
    if ethertype == ETH_P_ARP and len(body) >= 28:
        sender_ip, target_ip = body[14:18], body[24:28]
        if sender_ip == vip and target_ip == vip:
            return {"kind": "garp", "mac": src_mac, "op": struct.unpack("!H", body[6:8])[0]}
        return None
    if ethertype == ETH_P_IP and len(body) >= 20 and body[9] == IPPROTO_VRRP:
        header = (body[0] & 0x0F) * 4
        vrrp = body[header:]
        if len(vrrp) < 4:
            return None
        return {"kind": "advert", "mac": src_mac, "src": str(ipaddress.IPv4Address(body[12:16])),
                "vrid": vrrp[1], "priority": vrrp[2]}
    return None


def attach_filter(sock: socket.socket, program: tuple[tuple[int, int, int, int], ...]) -> None:
    """SO_ATTACH_FILTER with a classic BPF program (struct sock_fprog pointing at the code)."""
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *insn) for insn in program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(program), ctypes.addressof(code)))


def open_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    attach_filter(sock, ONLY_ARP_AND_VRRP)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # no drops while we lag
    sock.bind((ifname, 0))
    return sock


def capture(ifname: str, vip: str) -> None:
    sock = open_socket(ifname)
    packed = ipaddress.IPv4Address(vip).packed
    print(json.dumps({"kind": "ready"}), flush=True)
    while True:
        frame, ancillary, _, addr = sock.recvmsg(2048, STAMP_SPACE)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        event = parse(frame, packed)
        stamp = kernel_stamp(ancillary)
        if event is not None and stamp is not None:
            print(json.dumps({"t": stamp, **event}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ifname", default="eth0")
    parser.add_argument("--vip", required=True)
    args = parser.parse_args()
    try:
        capture(args.ifname, args.vip)
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)


if __name__ == "__main__":
    main()
