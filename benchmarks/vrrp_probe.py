"""ARP prober for the VRRP failover benchmark, run inside the client namespace.

Broadcasts an ARP request for the VIP every `--every` seconds and prints the
CLOCK_MONOTONIC time (shared by all namespaces) of the first reply whose
sender MAC is `--mac`, i.e. the moment the new master answers for the VIP.
With `--align-src`, it first waits for a VRRP advert from that address and
prints `advert`, so the caller can kill the master right after an advert:
the worst case, and the same phase for every implementation.
"""

from __future__ import annotations

import argparse
import ipaddress
import select
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806


def arp_request(src_mac: bytes, src_ip: bytes, vip: bytes) -> bytes:
    eth = b"\xff" * 6 + src_mac + struct.pack("!H", ETH_P_ARP)
    return eth + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src_mac + src_ip + bytes(6) + vip


def wait_advert(iface: str, src: str, timeout: float) -> bool:
    """Block until an IPv4 protocol-112 packet from `src` is seen; print `advert`."""
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sniff.bind((iface, 0))
    want = ipaddress.IPv4Address(src).packed
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([sniff], [], [], 0.05)
            if not ready:
                continue
            data = sniff.recv(256)
            if len(data) >= 34 and data[23] == 112 and data[26:30] == want:
                print(f"advert {time.monotonic():.6f}", flush=True)
                return True
        return False
    finally:
        sniff.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--src", required=True)
    ap.add_argument("--vip", required=True)
    ap.add_argument("--mac", required=True, help="MAC of the expected new master")
    ap.add_argument("--every", type=float, default=0.002)
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--align-src", help="wait for a VRRP advert from this address first")
    args = ap.parse_args()
    want = bytes.fromhex(args.mac.replace(":", ""))
    vip = ipaddress.IPv4Address(args.vip).packed
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sock.bind((args.iface, 0))
    my_mac = sock.getsockname()[4]
    frame = arp_request(my_mac, ipaddress.IPv4Address(args.src).packed, vip)
    print("ready", flush=True)
    if args.align_src and not wait_advert(args.iface, args.align_src, args.timeout):
        print("timeout", flush=True)
        return 1
    end = time.monotonic() + args.timeout
    next_send = 0.0
    while (now := time.monotonic()) < end:
        if now >= next_send:
            sock.send(frame)
            next_send = now + args.every
        ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
        if not ready:
            continue
        data = sock.recv(128)
        t = time.monotonic()
        if len(data) >= 42 and data[20:22] == b"\x00\x02" and data[28:32] == vip \
                and data[22:28] == want:
            print(f"answered {t:.6f}", flush=True)
            return 0
    print("timeout", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
