"""A paced flood of ICMP echo requests (MODE icmp), echo replies (icmp-reply: what the answers to
containers' pings cost, copied to every container) or ARP requests (arp) at one address, for the
bench (run inside the lab's world namespace: nsenter --net=NS python3 control-flood.py MODE DEV
ADDR RATE SECONDS).
Sends RATE requests a second for SECONDS (bounded: RATE <= 50000, SECONDS <= 10), counts the
answers that arrive until 0.5 s after the last request, and prints one JSON line:
{"sent", "replies", "seconds", "cpu_seconds"} — cpu_seconds is this process's own CPU time (with
the kernel's work on its packets, which Linux charges to it unless it accounts softirq time apart).
"""

import fcntl
import json
import os
import select
import socket
import struct
import sys
import time

SIOCGIFADDR = 0x8915
SIOCGIFHWADDR = 0x8927
ETH_P_ARP = 0x0806


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ifreq(sock: socket.socket, dev: str, req: int) -> bytes:
    return fcntl.ioctl(sock.fileno(), req, struct.pack("256s", dev.encode()))


def icmp_sender(addr: str, kind: int = 8):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setblocking(False)
    ident = os.getpid() & 0xFFFF

    def send(seq: int) -> None:
        header = struct.pack("!BBHHH", kind, 0, 0, ident, seq & 0xFFFF)
        payload = b"pmi-bench-echo.."
        s.sendto(struct.pack("!BBHHH", kind, 0, checksum(header + payload), ident, seq & 0xFFFF) + payload, (addr, 0))

    def is_reply(packet: bytes) -> bool:
        icmp = packet[(packet[0] & 0x0F) * 4 :]
        return len(icmp) >= 8 and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident

    return s, send, is_reply


def arp_sender(dev: str, addr: str):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    s.bind((dev, 0))
    s.setblocking(False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as q:
        ip = ifreq(q, dev, SIOCGIFADDR)[20:24]
        mac = ifreq(q, dev, SIOCGIFHWADDR)[18:24]
    target = socket.inet_aton(addr)
    frame = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP) + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\0" * 6 + target

    def send(_seq: int) -> None:
        s.send(frame)

    def is_reply(packet: bytes) -> bool:
        return len(packet) >= 42 and packet[12:14] == b"\x08\x06" and packet[20:22] == b"\x00\x02" and packet[28:32] == target

    return s, send, is_reply


def main() -> None:
    mode, dev, addr, rate, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    if not (1 <= rate <= 50000 and 0 < seconds <= 10):
        sys.exit("rate must be 1..50000 and seconds 0..10")
    if mode == "icmp":
        s, send, is_reply = icmp_sender(addr)
    elif mode == "icmp-reply":  # unsolicited echo replies: what a container's ping answers cost the host
        s, send, is_reply = icmp_sender(addr, 0)
    else:
        s, send, is_reply = arp_sender(dev, addr)
    total = int(rate * seconds)
    sent = replies = 0
    t0 = time.monotonic()
    end_recv = None
    # Bursts every millisecond, and in between the sender sleeps in select() (no busy loop: the
    # machine's CPU over the window is then the sending, the host's work and the answers).
    burst_s = 0.001
    while True:
        now = time.monotonic()
        due = min(total, int((now - t0) * rate) + 1)
        while sent < due:
            try:
                send(sent)
            except (BlockingIOError, OSError):
                pass  # a full socket buffer: that request is not sent
            sent += 1
        if sent >= total and end_recv is None:
            end_recv = now + 0.5
        if end_recv is not None and now >= end_recv:
            break
        wake = end_recv if end_recv is not None else t0 + (sent / rate) + burst_s
        r, _, _ = select.select([s], [], [], max(0.0, min(wake, now + burst_s) - now))
        while r:
            try:
                if is_reply(s.recv(2048)):
                    replies += 1
            except BlockingIOError:
                break
    t = os.times()
    print(json.dumps({"sent": sent, "replies": replies, "seconds": round(time.monotonic() - t0, 3), "cpu_seconds": round(t.user + t.system, 3)}))


main()
