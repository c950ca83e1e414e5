"""IPv6 packets the data-path tests need and Node cannot make (no raw sockets in Node): the IPv6
side of datapath.py and icmp.py. Run inside a lab namespace (root): nsenter --net=NS python3
datapath6.py MODE ARGS...; each mode prints one JSON line (sniff6 prints "ready" first) and is
bounded in count and time; bad arguments exit non-zero with a message.

  ping6 ADDR COUNT INTERVAL_MS WAIT_MS DUP_WAIT_MS
                        COUNT (1..100) ICMPv6 echo requests (56 random data bytes: only our answers
                        match) INTERVAL_MS apart from a raw ICMPv6 socket, counted as icmp.py counts:
                        {"sent", "received": distinct answered seqs, "duplicates": extra answers};
                        waits WAIT_MS after the last request, DUP_WAIT_MS after the last answer
  sniff6 DEV MS         print "ready" once capturing, then count what arrives on DEV for MS ms
                        (AF_PACKET, incoming only): {"total", "ipv4", "ipv6", "icmp6_echo_request",
                        "icmp6_echo_reply", "ns", "na", "mld", "udp", "tcp", "fragments"}
                        and "na_targets", "na_unsolicited_targets" (S flag clear): {target: count}
                        (ns/na/ra: ICMPv6 135/136/134; mld: ICMPv6 130-132/143 or anything behind a
                        hop-by-hop header; udp/tcp/fragments: IPv6 next header 17/6/44)
  ns-count DEV TARGET MS
                        a neighbour solicitation for TARGET from DEV once a second for MS ms (to
                        TARGET's solicited-node group, hop limit 255, from the address the kernel
                        picks for TARGET on DEV (its global one), source link-layer option DEV's
                        MAC), every advertisement for TARGET that arrives meanwhile counted:
                        {"sent", "replies"}
  icmp6-error TYPE CODE MTU DST QSRC QDST QSPORT QDPORT
                        send one ICMPv6 error (TYPE 1 unreachable, 2 packet too big with MTU, 3 time
                        exceeded) to DST quoting a UDP packet [QSRC]:QSPORT -> [QDST]:QDPORT: {"sent": 1}
  udp6-flow SPORT DST DPORT MS [SIZE [SENDS]]
                        a connected UDP socket from [::]:SPORT sends one datagram of SIZE bytes
                        (default 16) and, for MS ms, waits for an ICMPv6 error; with SENDS 2 it then
                        sends it again and waits MS/2 more (a path MTU learned from the first shows):
                        {"refused": bool, "mtu": path MTU the socket sees (IPV6_MTU)}
  forge6 DEV DSTMAC SRC DST SPORT DPORT COUNT
                        COUNT (1..100) UDP datagrams with a forged IPv6 source SRC, in Ethernet frames
                        from DEV's MAC to DSTMAC (AF_PACKET): {"sent"}
  icmp6-send TYPE DST [TARGET]
                        one ICMPv6 message of TYPE to DST from a raw socket (hop limit 255, as ND
                        wants): 4 bytes of flags (override only for an advertisement, 136: an
                        unsolicited one),
                        then TARGET (default ::): a neighbour solicitation or advertisement for
                        TARGET, or (type 134) a router advertisement: {"sent": 1}
  frag6 DEV DSTMAC SRC DST DPORT [OFFSET]
                        one atomic fragment (RFC 6946: fragment header, offset 0, M 0) holding a UDP
                        datagram [SRC]:40000 -> [DST]:DPORT of 16 bytes, from DEV to DSTMAC; with
                        OFFSET (a multiple of 8), a last fragment at that offset holding 16 bytes of
                        payload instead, whose fragment header reads as port OFFSET where a port
                        would be without it: {"sent": 1}
"""

import errno
import fcntl
import json
import os
import select
import socket
import struct
import sys
import time

from capture import incoming_frames  # (the same script folder)
from icmp import checksum, echo_loop

ETH_P_IPV6 = 0x86DD
SIOCGIFHWADDR = 0x8927
IPV6_MTU = 24
IPV6_RECVERR = 25
SO_BINDTODEVICE = 25
RESEND_S = 1.0


def mac_of(dev: str) -> bytes:
    """DEV's MAC, asked of this namespace's stack (not /sys: nsenter keeps the host's sysfs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as q:
        try:
            return fcntl.ioctl(q.fileno(), SIOCGIFHWADDR, struct.pack("256s", dev.encode()))[18:24]
        except OSError as e:
            sys.exit(f"no device {dev}: {e.strerror}")


def source_for(dev: str, target: str):
    """The address the kernel would send from to TARGET out of DEV (its global one for a global
    TARGET), else DEV's first usable global address in this namespace's /proc/net, else None."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as u:
        u.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, dev.encode())
        try:
            u.connect((target, 9))
            return u.getsockname()[0]
        except OSError:
            pass
    with open("/proc/net/if_inet6") as f:
        for line in f:
            addr, _index, _plen, scope, flags, name = line.split()
            # scope 0: global; flags 0x40 tentative, 0x20 deprecated, 0x08 DAD failed
            if name == dev and int(scope, 16) == 0 and not int(flags, 16) & 0x68:
                return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(addr))
    return None


def ip6(addr: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET6, addr)
    except OSError:
        sys.exit(f"not an IPv6 address: {addr}")


def mac(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.replace(":", "")) if len(text) == 17 else b""
    except ValueError:
        raw = b""
    if len(raw) != 6:
        sys.exit(f"not a MAC address: {text}")
    return raw


def sockaddr6(addr: str) -> tuple:
    """(addr, 0, 0, scope) for a numeric IPv6 address, fe80::1%eth0 included."""
    try:
        return socket.getaddrinfo(addr, None, socket.AF_INET6, socket.SOCK_RAW, 0, socket.AI_NUMERICHOST)[0][4]
    except socket.gaierror:
        sys.exit(f"not an IPv6 address: {addr}")


def ipv6_header(src: bytes, dst: bytes, next_header: int, payload_len: int, hop_limit: int = 64) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, payload_len, next_header, hop_limit, src, dst)


def udp6(src: bytes, dst: bytes, sport: int, dport: int, data: bytes) -> bytes:
    """A UDP header and DATA, with the checksum over the IPv6 pseudo-header."""
    length = 8 + len(data)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    pseudo = src + dst + struct.pack("!IxxxB", length, 17)
    csum = checksum(pseudo + header + data) or 0xFFFF  # 0 means "no checksum", forbidden in IPv6
    return struct.pack("!HHHH", sport, dport, length, csum) + data


def icmp6_socket() -> socket.socket:
    # The kernel fills in the ICMPv6 checksum (RFC 3542) and hands us the message without the IPv6 header.
    return socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)


def ping6(addr: str, count: int, interval_ms: int, wait_ms: int, dup_wait_ms: int) -> dict:
    to = sockaddr6(addr)
    ident = os.getpid() & 0xFFFF
    payload = os.urandom(56)
    sock = icmp6_socket()

    def send(seq: int) -> None:
        try:
            sock.sendto(struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload, to)
        except OSError as e:  # no route, a link-local address without its %DEV...
            sys.exit(f"cannot send to {addr}: {e.strerror}")

    def reply_seq(msg: bytes):
        # A raw socket sees every ICMPv6 message of the namespace (our own requests on lo too).
        if len(msg) < 8 or msg[0] != 129 or msg[8:] != payload:
            return None
        rid, seq = struct.unpack("!HH", msg[4:8])
        return seq if rid == ident else None

    return echo_loop(sock, count, interval_ms, wait_ms, dup_wait_ms, send, reply_seq)


def sniff6(dev: str, ms: int) -> dict:
    keys = ("total", "ipv4", "ipv6", "icmp6_echo_request", "icmp6_echo_reply", "ns", "na", "ra", "mld", "udp", "tcp", "fragments")
    out = dict.fromkeys(keys, 0)
    out["na_targets"] = {}
    out["na_unsolicited_targets"] = {}
    for frame in incoming_frames(dev, ms):
        out["total"] += 1
        ethertype = struct.unpack("!H", frame[12:14])[0]
        if ethertype == 0x0800:
            out["ipv4"] += 1
        elif ethertype == ETH_P_IPV6 and len(frame) >= 14 + 40:
            out["ipv6"] += 1
            nh, body = frame[14 + 6], frame[14 + 40 :]
            if nh == 0:  # hop-by-hop options: MLD (router alert)
                out["mld"] += 1
            elif nh == 58 and body:
                kind = body[0]
                name = {128: "icmp6_echo_request", 129: "icmp6_echo_reply", 134: "ra", 135: "ns", 136: "na"}.get(kind)
                if name:
                    out[name] += 1
                if kind == 136 and len(body) >= 24:
                    target = socket.inet_ntop(socket.AF_INET6, body[8:24])
                    out["na_targets"][target] = out["na_targets"].get(target, 0) + 1
                    if not body[4] & 0x40:  # S clear: unsolicited (a kernel's answers to solicitations have it)
                        out["na_unsolicited_targets"][target] = out["na_unsolicited_targets"].get(target, 0) + 1
                elif kind in (130, 131, 132, 143):
                    out["mld"] += 1
            elif nh == 17:
                out["udp"] += 1
            elif nh == 6:
                out["tcp"] += 1
            elif nh == 44:
                out["fragments"] += 1
    return out


def solicited_node(target: bytes) -> bytes:
    return bytes.fromhex("ff02" + "0000" * 4 + "0001ff") + target[13:]


def ns_count(dev: str, target_text: str, ms: int) -> dict:
    if not 0 < ms <= 600_000:
        sys.exit("ms must be 1..600000")
    target = ip6(target_text)
    hw = mac_of(dev)
    index = socket.if_nametoindex(dev)
    src = source_for(dev, target_text)
    s = icmp6_socket()
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, dev.encode())
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    if src:  # for the link-scope group the kernel would pick DEV's link-local address: ask for TARGET's pick
        s.bind((src, 0, 0, index if src.startswith("fe80") else 0))
    group = socket.inet_ntop(socket.AF_INET6, solicited_node(target))
    # type, code, checksum (kernel), reserved, target, option 1 (source link-layer address), 1 × 8 bytes
    solicitation = struct.pack("!BBHI16sBB6s", 135, 0, 0, 0, target, 1, 1, hw)
    sent = replies = 0
    deadline = time.monotonic() + ms / 1000
    next_send = time.monotonic()
    while (now := time.monotonic()) < deadline:
        if now >= next_send:
            s.sendto(solicitation, (group, 0, 0, index))
            sent += 1
            next_send = now + RESEND_S
        ready, _, _ = select.select([s], [], [], max(0.0, min(deadline, next_send) - now))
        if ready:
            msg = s.recv(65535)
            if len(msg) >= 24 and msg[0] == 136 and msg[1] == 0 and msg[8:24] == target:
                replies += 1
    return {"sent": sent, "replies": replies}


def icmp6_error(kind: int, code: int, mtu: int, dst: str, qsrc: str, qdst: str, qsport: int, qdport: int) -> dict:
    if kind not in (1, 2, 3):
        sys.exit("type must be 1 (unreachable), 2 (packet too big) or 3 (time exceeded)")
    if not 0 <= code <= 255 or not 0 <= mtu <= 0xFFFFFFFF:
        sys.exit("code must be 0..255, mtu 0..2^32-1")
    src, qd = ip6(qsrc), ip6(qdst)
    quoted_udp = udp6(src, qd, qsport, qdport, b"Q" * 16)
    quoted = ipv6_header(src, qd, 17, len(quoted_udp)) + quoted_udp
    body = struct.pack("!BBHI", kind, code, 0, mtu if kind == 2 else 0) + quoted
    icmp6_socket().sendto(body, sockaddr6(dst))
    return {"sent": 1}


def udp6_flow(sport: int, dst: str, dport: int, ms: int, size: int = 16, sends: int = 1) -> dict:
    if not 0 < ms <= 600_000 or not 1 <= size <= 65000 or sends not in (1, 2):
        sys.exit("ms must be 1..600000, size 1..65000, sends 1 or 2")
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)  # every ICMPv6 error reaches the socket
    s.bind(("::", sport))
    host, _, flow, scope = sockaddr6(dst)
    s.connect((host, dport, flow, scope))
    s.setblocking(False)
    data = (b"probe\n" * (size // 6 + 1))[:size]
    refused = False

    def attempt(fn) -> None:
        nonlocal refused
        try:
            fn()
        except ConnectionRefusedError:
            refused = True
        except BlockingIOError:
            pass
        except OSError as e:  # EMSGSIZE (a packet too big), EHOSTUNREACH...: not a refusal
            if e.errno == errno.EBADF:
                raise

    for window in (ms, ms / 2)[:sends]:
        attempt(lambda: s.send(data))
        end = time.monotonic() + window / 1000
        while (left := end - time.monotonic()) > 0 and not refused:
            select.select([s], [], [], min(left, 0.02))
            attempt(lambda: s.recv(65535))
    return {"refused": refused, "mtu": s.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)}


def ether_send(dev: str, dst_mac: bytes, packet: bytes, count: int) -> None:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    try:
        s.bind((dev, ETH_P_IPV6))
    except OSError as e:
        sys.exit(f"no device {dev}: {e.strerror}")
    frame = dst_mac + s.getsockname()[4] + struct.pack("!H", ETH_P_IPV6) + packet
    for _ in range(count):
        s.send(frame)


def forge6(dev: str, dst_mac: str, src: str, dst: str, sport: int, dport: int, count: int) -> dict:
    if not 1 <= count <= 100:
        sys.exit("count must be 1..100")
    to, s, d = mac(dst_mac), ip6(src), ip6(dst)
    udp = udp6(s, d, sport, dport, b"forged\n")
    ether_send(dev, to, ipv6_header(s, d, 17, len(udp)) + udp, count)
    return {"sent": count}


def frag6(dev: str, dst_mac: str, src: str, dst: str, dport: int, offset: int = 0) -> dict:
    if offset % 8 or not 0 <= offset <= 0xFFF8:
        sys.exit("offset must be a multiple of 8 in 0..65528")
    to, s, d = mac(dst_mac), ip6(src), ip6(dst)
    # At offset 0 a UDP datagram; further on, 16 bytes of its payload (no ports in them): the
    # fragment header's offset field is where a port would be read without it, e.g. offset 31040
    # reads as port 31040 (0x7940).
    body = udp6(s, d, 40000, dport, b"atomic fragment\n") if offset == 0 else b"later fragment\n\n"
    # next header UDP, reserved, offset / M 0, identification
    fragment = struct.pack("!BBHI", 17, 0, offset, int.from_bytes(os.urandom(4), "big"))
    ether_send(dev, to, ipv6_header(s, d, 44, len(fragment) + len(body)) + fragment + body, 1)
    return {"sent": 1}


def icmp6_send(kind: int, dst: str, target: str = "::") -> dict:
    if not 0 <= kind <= 255:
        sys.exit("type must be 0..255")
    sock = icmp6_socket()
    # Hop limit 255, as neighbour discovery requires (receivers drop ND messages with any other).
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    # Type, code, checksum (the kernel's), 4 bytes of flags, then a target address (ND) or zeros.
    body = struct.pack("!BBHI", kind, 0, 0, 0x20000000 if kind == 136 else 0) + ip6(target)
    sock.sendto(body, sockaddr6(dst))
    return {"sent": 1}


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"port out of range: {text}")
    return value


MODES = {
    # mode: (function, argument parsers (str: as given), how many trailing ones are optional)
    "ping6": (ping6, (str, int, int, int, int), 0),
    "sniff6": (sniff6, (str, int), 0),
    "ns-count": (ns_count, (str, str, int), 0),
    "icmp6-error": (icmp6_error, (int, int, int, str, str, str, port, port), 0),
    "udp6-flow": (udp6_flow, (port, str, port, int, int, int), 2),
    "forge6": (forge6, (str, str, str, str, port, port, int), 0),
    "frag6": (frag6, (str, str, str, str, port, int), 1),
    "icmp6-send": (icmp6_send, (int, str, str), 1),
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        sys.exit(f"usage: datapath6.py MODE ARGS... (MODE one of {', '.join(MODES)}; see the docstring)")
    mode, args = sys.argv[1], sys.argv[2:]
    fn, parsers, optional = MODES[mode]
    if not len(parsers) - optional <= len(args) <= len(parsers):
        sys.exit(f"{mode}: expected {len(parsers) - optional}..{len(parsers)} arguments, got {len(args)} (see the docstring)")
    try:
        values = [parse(a) for parse, a in zip(parsers, args)]
    except ValueError as e:
        sys.exit(f"{mode}: bad argument: {e}")
    print(json.dumps(fn(*values)), flush=True)


main()
