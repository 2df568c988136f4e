"""ARP prober for the VRRP failover benchmark, run inside the client namespace.

Broadcasts an ARP request for the VIP every `--every` seconds and prints the
CLOCK_MONOTONIC time (shared by all namespaces) of the first reply whose
sender MAC is `--mac`, i.e. the moment the new master answers for the VIP.
With `--align-src`, it first waits for a VRRP advert from that address and
prints `advert`, so the caller can kill the master right after an advert:
the worst case, and the same phase for every implementation. With
`--resign-src`, it also prints `resign <time>` when that address's
priority-0 advert (a graceful stop) arrives. With `--advert-src` the takeover is
that address's first advert instead (a virtual MAC answers ARP alike from both
masters, the dead one's kernel included).

    python -m benchmarks.vrrp_probe --src ADDR --vip VIP --mac MAC [--align-src ADDR] [--resign-src ADDR]

(benchmarks.vrrp_failover runs it; frames are stamped by the kernel, vrrp.sockets.kernel_stamp.)
"""

from __future__ import annotations

import argparse
import ipaddress
import select
import socket
import struct
import sys
import time

from vrrp.sockets import SO_TIMESTAMPNS, kernel_stamp

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800


def arp_request(src_mac: bytes, src_ip: bytes, vip: bytes) -> bytes:
    eth = b"\xff" * 6 + src_mac + struct.pack("!H", ETH_P_ARP)
    return eth + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src_mac + src_ip + bytes(6) + vip


def stamped_socket(iface: str, proto: int) -> socket.socket:
    """A packet socket whose frames carry the kernel's arrival time (`recv_stamped`)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((iface, 0))
    return sock


def recv_stamped(sock: socket.socket) -> tuple[bytes, float]:
    """A frame and its arrival on CLOCK_MONOTONIC: the kernel stamps it on the wall
    clock as it comes in, so the prober's own scheduling delay does not count."""
    data, ancillary, _flags, _addr = sock.recvmsg(256, 64)
    offset = time.time() - time.monotonic()
    stamp = kernel_stamp(ancillary)
    return data, time.monotonic() if stamp is None else stamp - offset


def vrrp_sniffer(iface: str) -> socket.socket:
    return stamped_socket(iface, ETH_P_IP)


def vrrp_priority(data: bytes, src: bytes) -> int | None:
    """The priority of a VRRP advert from `src` (plain, or inside AH), else None."""
    if len(data) < 34 or data[23] not in (51, 112) or data[26:30] != src:
        return None
    at = 14 + (data[14] & 0x0F) * 4  # after the IP header (with any options)
    if data[23] == 51:  # AH: its length is in 32-bit words, less 2
        if len(data) < at + 2 or data[at] != 112:
            return None
        at += (data[at + 1] + 2) * 4
    at += 2  # version/type, VRID
    return data[at] if len(data) > at else None


def wait_advert(sniff: socket.socket, src: str, timeout: float) -> bool:
    """Block until an IPv4 protocol-112 packet from `src` is seen; print `advert`."""
    want = ipaddress.IPv4Address(src).packed
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([sniff], [], [], 0.05)
        if not ready:
            continue
        data, t = recv_stamped(sniff)
        if vrrp_priority(data, want) is not None:
            print(f"advert {t:.6f}", flush=True)
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--src", required=True)
    ap.add_argument("--vip", required=True)
    ap.add_argument("--mac", required=True, help="MAC of the expected new master")
    ap.add_argument("--every", type=float, default=0.002)
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--align-src", help="wait for a VRRP advert from this address first")
    ap.add_argument("--resign-src", help="report this address's priority-0 advert")
    ap.add_argument("--advert-src", help="the takeover is this address's first advert, not an ARP reply "
                    "from --mac (with a virtual MAC both masters answer with the same one)")
    args = ap.parse_args()
    want = bytes.fromhex(args.mac.replace(":", ""))
    vip = ipaddress.IPv4Address(args.vip).packed
    sock = stamped_socket(args.iface, ETH_P_ARP)
    my_mac = sock.getsockname()[4]
    frame = arp_request(my_mac, ipaddress.IPv4Address(args.src).packed, vip)
    sniff = vrrp_sniffer(args.iface) if args.align_src or args.resign_src or args.advert_src else None
    print("ready", flush=True)
    if args.align_src and sniff and not wait_advert(sniff, args.align_src, args.timeout):
        print("timeout", flush=True)
        return 1
    if sniff and not args.resign_src and not args.advert_src:
        sniff.close()
        sniff = None
    resigner = ipaddress.IPv4Address(args.resign_src).packed if args.resign_src else b""
    newcomer = ipaddress.IPv4Address(args.advert_src).packed if args.advert_src else b""
    end = time.monotonic() + args.timeout
    next_send = 0.0
    while (now := time.monotonic()) < end:
        if now >= next_send:
            sock.send(frame)
            next_send = now + args.every
        watched = [sock, sniff] if sniff else [sock]
        ready, _, _ = select.select(watched, [], [], max(0.0, next_send - time.monotonic()))
        if sniff in ready:
            data, t = recv_stamped(sniff)
            if resigner and vrrp_priority(data, resigner) == 0:
                print(f"resign {t:.6f}", flush=True)
                resigner = b""
            if newcomer and vrrp_priority(data, newcomer):
                print(f"answered {t:.6f}", flush=True)
                return 0
            if not resigner and not newcomer:
                sniff.close()
                sniff = None
        if sock not in ready:
            continue
        data, t = recv_stamped(sock)
        if not newcomer and len(data) >= 42 and data[20:22] == b"\x00\x02" and data[28:32] == vip \
                and data[22:28] == want:
            print(f"answered {t:.6f}", flush=True)
            return 0
    print("timeout", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
