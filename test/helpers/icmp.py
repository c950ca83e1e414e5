"""ICMP echo for the tests, in place of ping(8): run inside a lab namespace (nsenter --net=NS
python3 icmp.py ADDR COUNT INTERVAL_MS SIZE WAIT_MS DUP_WAIT_MS). Sends COUNT echo requests of SIZE data bytes,
INTERVAL_MS apart, from a raw ICMP socket (root), and prints one JSON line:
{"sent": N, "received": N, "duplicates": N} — received counts distinct answered sequence
numbers, duplicates the extra answers (as ping's "DUP!"). Waits for answers up to WAIT_MS after
the last request, and DUP_WAIT_MS after the last answer arrived, so later duplicates count too.
Bounded: COUNT ≤ 100 and the whole run ≤ COUNT × INTERVAL_MS + WAIT_MS.
"""

import json
import os
import select
import socket
import struct
import sys
import time

def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq) + payload


def parse_reply(packet: bytes, ident: int, payload: bytes):
    """The sequence number of our echo reply in an IPv4 packet, or None for anything else."""
    ihl = (packet[0] & 0x0F) * 4
    icmp = packet[ihl:]
    if len(icmp) < 8:
        return None
    kind, _code, _sum, rid, seq = struct.unpack("!BBHHH", icmp[:8])
    # A raw socket sees every ICMP packet of the namespace (our own requests on lo too).
    if kind != 0 or rid != ident or icmp[8:] != payload:
        return None
    return seq


def echo_loop(sock: socket.socket, count: int, interval_ms: int, wait_ms: int, dup_wait_ms: int, send, reply_seq) -> dict:
    """COUNT requests INTERVAL_MS apart (send(seq), seq from 1), answers read from SOCK until
    WAIT_MS after the last request and DUP_WAIT_MS after the last answer (reply_seq(message):
    the answered sequence number, or None for anything else). Used by icmp.py and datapath6.py."""
    if not 1 <= count <= 100:
        sys.exit("count must be 1..100")
    if min(interval_ms, wait_ms, dup_wait_ms) < 0:
        sys.exit("times must be >= 0")
    answers: dict[int, int] = {}
    sent = 0
    next_send = time.monotonic()
    deadline = next_send + (count - 1) * interval_ms / 1000 + wait_ms / 1000
    dup_wait = dup_wait_ms / 1000
    last_answer = 0.0
    while True:
        now = time.monotonic()
        if sent < count and now >= next_send:
            send(sent + 1)
            sent += 1
            next_send += interval_ms / 1000
            continue
        all_in = sent == count and len(answers) == count
        if now >= deadline or (all_in and now >= last_answer + dup_wait):
            break
        until = min(deadline, next_send if sent < count else deadline, last_answer + dup_wait if all_in else deadline)
        ready, _, _ = select.select([sock], [], [], max(0.0, until - now))
        if ready:
            seq = reply_seq(sock.recv(65535))
            if seq is not None and 1 <= seq <= sent:
                answers[seq] = answers.get(seq, 0) + 1
                last_answer = time.monotonic()
    return {"sent": sent, "received": len(answers), "duplicates": sum(answers.values()) - len(answers)}


def main() -> None:
    addr, count, interval_ms, size, wait_ms, dup_wait_ms = sys.argv[1], *map(int, sys.argv[2:7])
    ident = os.getpid() & 0xFFFF
    payload = (os.urandom(8) * (size // 8 + 1))[:size]  # a random pattern: only our answers match
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)

    def send(seq: int) -> None:
        sock.sendto(echo_request(ident, seq, payload), (addr, 0))

    print(json.dumps(echo_loop(sock, count, interval_ms, wait_ms, dup_wait_ms, send, lambda m: parse_reply(m, ident, payload))))


if __name__ == "__main__":
    main()
