"""The incoming frames of a device for a while, for the probes' sniff modes (datapath.py,
datapath6.py): one AF_PACKET socket, "ready" printed once it is bound (the caller starts its
traffic then), bounded in time."""

import errno
import select
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def incoming_frames(dev: str, ms: int):
    """Yield each frame DEV receives (not the ones it sends) for MS ms."""
    if not 0 < ms <= 600_000:
        sys.exit("ms must be 1..600000")
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        s.bind((dev, 0))
    except OSError as e:
        sys.exit(f"no device {dev}: {e.strerror}")
    print("ready", flush=True)  # the caller starts its traffic now
    end = time.monotonic() + ms / 1000
    while (left := end - time.monotonic()) > 0:
        r, _, _ = select.select([s], [], [], left)
        if not r:
            break
        try:
            frame, addr = s.recvfrom(65535)
        except OSError as e:  # DEV went down meanwhile (reported once): keep counting until MS
            if e.errno != errno.ENETDOWN:
                raise
            continue
        if addr[2] != PACKET_OUTGOING:
            yield frame
