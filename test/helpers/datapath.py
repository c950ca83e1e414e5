"""Packets the data-path tests need and Node cannot make (no raw sockets in Node). Run inside a
lab namespace: nsenter --net=NS python3 datapath.py MODE ARGS...; each mode prints one JSON line
and is bounded in count and time.

  sniff DEV MS          print "ready" once capturing, then count what arrives on DEV for MS ms
                        (AF_PACKET, incoming only):
                        {"total", "arp", "icmp_echo_request", "icmp", "udp", "fragments"}
  forge SRC DST SPORT DPORT COUNT
                        send COUNT UDP datagrams with a forged IPv4 source (IP_HDRINCL): {"sent"}
  icmp-error TYPE CODE MTU DST QSRC QDST QSPORT QDPORT
                        send one ICMP error to DST quoting a UDP packet QSRC:QSPORT -> QDST:QDPORT
                        (MTU: the next-hop MTU of a fragmentation-needed): {"sent": 1}
  udp-flow SPORT DST DPORT MS
                        a connected UDP socket from SPORT sends one datagram and, for MS ms, waits
                        for an ICMP error: {"refused": bool, "mtu": path MTU the socket sees}
  arp-replies DEV DST_MAC DST COUNT
                        send COUNT ARP replies "DEV's address is at DEV's MAC" to DST / DST_MAC
                        (COUNT <= 2000) at once, from DEV: {"sent"}
  echo-replies DST COUNT
                        send COUNT unsolicited ICMP echo replies (COUNT <= 2000) to DST at once: {"sent"}
  big-udp DST DPORT SIZE MARK_PORT
                        one UDP datagram of SIZE bytes (fragmented by the kernel) whose second
                        fragment's bytes 2-3 (where a port would be) are MARK_PORT: {"sent": 1}
"""

import errno
import fcntl
import json
import select
import socket
import struct
import sys
import time

from capture import incoming_frames  # (the same script folder)
from icmp import checksum

IP_MTU = 14


def ipv4_header(src: str, dst: str, proto: int, payload_len: int, ident: int = 0x4242, flags_frag: int = 0) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, flags_frag, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:]


def sniff(dev: str, ms: int) -> dict:
    out = {"total": 0, "arp": 0, "icmp_echo_request": 0, "icmp": 0, "udp": 0, "fragments": 0}
    for frame in incoming_frames(dev, ms):
        out["total"] += 1
        ethertype = struct.unpack("!H", frame[12:14])[0]
        if ethertype == 0x0806:
            out["arp"] += 1
        elif ethertype == 0x0800:
            ip = frame[14:]
            frag = struct.unpack("!H", ip[6:8])[0]
            if frag & 0x1FFF:
                out["fragments"] += 1
                continue
            if ip[9] == 1:
                out["icmp"] += 1
                if ip[(ip[0] & 0xF) * 4] == 8:
                    out["icmp_echo_request"] += 1
            elif ip[9] == 17:
                out["udp"] += 1
    return out


def forge(src: str, dst: str, sport: int, dport: int, count: int) -> dict:
    if not 1 <= count <= 100:
        sys.exit("count must be 1..100")
    data = b"forged\n"
    udp = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    for _ in range(count):
        s.sendto(ipv4_header(src, dst, 17, len(udp)) + udp, (dst, 0))
    return {"sent": count}


def icmp_error(kind: int, code: int, mtu: int, dst: str, qsrc: str, qdst: str, qsport: int, qdport: int) -> dict:
    quoted_udp = struct.pack("!HHHH", qsport, qdport, 8 + 1400, 0)
    quoted = ipv4_header(qsrc, qdst, 17, 8 + 1400, flags_frag=0x4000) + quoted_udp  # DF, as a PMTU probe
    rest = struct.pack("!HH", 0, mtu) if (kind, code) == (3, 4) else b"\0\0\0\0"
    body = struct.pack("!BBH", kind, code, 0) + rest + quoted
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.sendto(body, (dst, 0))
    return {"sent": 1}


def udp_flow(sport: int, dst: str, dport: int, ms: int) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", sport))
    s.connect((dst, dport))
    s.setblocking(False)
    refused = False
    try:
        s.send(b"probe\n")
    except ConnectionRefusedError:
        refused = True
    end = time.monotonic() + ms / 1000
    mtu = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
    while time.monotonic() < end and not refused:
        select.select([s], [], [], 0.02)
        try:
            s.recv(2048)
        except ConnectionRefusedError:
            refused = True
        except BlockingIOError:
            pass
        except OSError as e:  # EMSGSIZE: the socket learned a smaller path MTU (a fragmentation-needed)
            if e.errno != errno.EMSGSIZE:
                raise
        mtu = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
    return {"refused": refused, "mtu": mtu}


def arp_replies(dev: str, dst_mac: str, dst: str, count: int) -> dict:
    if not 1 <= count <= 2000:
        sys.exit("count must be 1..2000")
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    s.bind((dev, 0))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as q:
        ip = fcntl.ioctl(q.fileno(), 0x8915, struct.pack("256s", dev.encode()))[20:24]  # SIOCGIFADDR
        mac = fcntl.ioctl(q.fileno(), 0x8927, struct.pack("256s", dev.encode()))[18:24]  # SIOCGIFHWADDR
    to = bytes.fromhex(dst_mac.replace(":", ""))
    frame = to + mac + struct.pack("!H", 0x0806) + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + ip + to + socket.inet_aton(dst)
    for _ in range(count):
        s.send(frame)
    return {"sent": count}


def echo_replies(dst: str, count: int) -> dict:
    if not 1 <= count <= 2000:
        sys.exit("count must be 1..2000")
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    for seq in range(count):
        header = struct.pack("!BBHHH", 0, 0, 0, 0x4242, seq)
        s.sendto(struct.pack("!BBHHH", 0, 0, checksum(header + b"x" * 56), 0x4242, seq) + b"x" * 56, (dst, 0))
    return {"sent": count}


def big_udp(dst: str, dport: int, size: int, mark_port: int) -> dict:
    if not 1500 < size <= 8000:
        sys.exit("size must be 1501..8000")
    data = bytearray(b"A" * size)
    # The second fragment starts 1480 bytes into the UDP datagram (8 bytes of header, then data).
    at = 1480 - 8
    data[at : at + 4] = struct.pack("!HH", mark_port, mark_port)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(bytes(data), (dst, dport))
    return {"sent": 1}


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "sniff":
        out = sniff(args[0], int(args[1]))
    elif mode == "forge":
        out = forge(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif mode == "icmp-error":
        out = icmp_error(int(args[0]), int(args[1]), int(args[2]), args[3], args[4], args[5], int(args[6]), int(args[7]))
    elif mode == "udp-flow":
        out = udp_flow(int(args[0]), args[1], int(args[2]), int(args[3]))
    elif mode == "arp-replies":
        out = arp_replies(args[0], args[1], args[2], int(args[3]))
    elif mode == "echo-replies":
        out = echo_replies(args[0], int(args[1]))
    elif mode == "big-udp":
        out = big_udp(args[0], int(args[1]), int(args[2]), int(args[3]))
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(out), flush=True)


main()
