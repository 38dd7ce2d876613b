"""Raw Ethernet I/O on one interface: the pods' and tests' only socket.

An AF_PACKET socket bound to one interface and EtherType 0x88B5 by default.
Frames the host itself sends come back to packet sockets as PACKET_OUTGOING;
they are skipped here so a receiver sees only what arrived on the wire.
Sending is a plain ``send`` of bytes: build with Scapy once, send many times
(the benchmark generator does exactly that).
"""
from __future__ import annotations

import select
import socket
import time

from traffic.wire.defs import ETHERTYPE_DMSC

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_RCVBUF_BYTES = 4 * 1024 * 1024


class RawLink:
    """One interface, one EtherType. Use as a context manager."""

    def __init__(self, iface: str, ethertype: int = ETHERTYPE_DMSC):
        self.iface = iface
        self.ethertype = ethertype
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                  socket.htons(ethertype))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SO_RCVBUF_BYTES)
            self.sock.bind((iface, ethertype))
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def send(self, frame: bytes) -> None:
        # A full socket buffer is backpressure, not an error: wait for room.
        while True:
            try:
                self.sock.send(frame)
                return
            except BlockingIOError:
                select.select([], [self.sock], [], 0.1)

    def recv(self, timeout: float) -> bytes | None:
        """The next frame that arrived on the wire, or None at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
                if addr[2] == PACKET_OUTGOING:
                    continue
                return data
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                select.select([self.sock], [], [], left)

    def drain(self, timeout: float, until=None) -> list[bytes]:
        """Frames received until ``timeout`` passes with none arriving, or until
        ``until(frames)`` says enough."""
        frames = []
        while True:
            f = self.recv(timeout)
            if f is None:
                return frames
            frames.append(f)
            if until is not None and until(frames):
                return frames

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
