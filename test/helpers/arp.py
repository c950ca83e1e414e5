"""ARP for the tests, in place of iputils' ARP tool: run inside a lab namespace (nsenter --net=NS python3
arp.py DEV ADDR COUNT TIMEOUT_MS). Broadcasts "who-has ADDR tell <DEV's IPv4>" from DEV's MAC over
an AF_PACKET socket (root), once a second like that tool, until COUNT replies arrived or TIMEOUT_MS
passed, then prints one JSON line: {"sent": N, "replies": N}. A reply is an ARP reply from ADDR
to DEV's address. Bounded: at most TIMEOUT_MS / 1 s + 1 requests, the run ≤ TIMEOUT_MS.
"""

import fcntl
import json
import select
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806
PACKET_OUTGOING = 4
SIOCGIFADDR = 0x8915
RESEND_S = 1.0


def ipv4_of(dev: str) -> bytes:
    """DEV's IPv4 address, asked of this namespace's stack (not /sys: nsenter keeps the host's)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", dev.encode()))[20:24]


def request(mac: bytes, ip: bytes, target: bytes) -> bytes:
    eth = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\0" * 6 + target
    return eth + arp


def is_reply(frame: bytes, ip: bytes, target: bytes) -> bool:
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return False
    op = struct.unpack("!H", frame[20:22])[0]
    sender_ip, target_ip = frame[28:32], frame[38:42]
    return op == 2 and sender_ip == target and target_ip == ip


def main() -> None:
    dev, addr, count, timeout_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    target = socket.inet_aton(addr)
    ip = ipv4_of(dev)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sock.bind((dev, ETH_P_ARP))
    mac = sock.getsockname()[4]
    sent = replies = 0
    deadline = time.monotonic() + timeout_ms / 1000
    next_send = time.monotonic()
    while replies < count:
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_send:
            sock.send(request(mac, ip, target))
            sent += 1
            next_send = now + RESEND_S
        ready, _, _ = select.select([sock], [], [], max(0.0, min(deadline, next_send) - now))
        if ready:
            frame, meta = sock.recvfrom(65535)
            if meta[2] != PACKET_OUTGOING and is_reply(frame, ip, target):
                replies += 1
    print(json.dumps({"sent": sent, "replies": replies}))


main()
