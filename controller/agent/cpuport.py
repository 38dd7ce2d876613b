"""Packet I/O through the switch's CPU port as an interface (no P4Runtime stream).

BMv2 started with ``-i 255@<veth>`` and no ``--cpu-port`` sends what the
pipeline punts out of that veth with the ``packet_in`` header in front, and
takes frames injected into it with the ``packet_out`` header in front (the P4
parser reads it on ingress port 255): the same bytes the P4Runtime server
would turn into stream messages. The agent reads and writes the other end of
the veth with a raw AF_PACKET socket, in the protocol thread itself: no gRPC,
no protobuf, no thread hand-offs per frame (nsg-ethz/p4-learning's switches
talk to their controllers the same way). The P4Runtime session stays for
writes, reads and mastership.

:class:`CpuPort` has the packet methods of
:class:`controller.switch.p4rt.SwitchConnection` (``packet_in``,
``packet_out``, ``wake``).
"""
from __future__ import annotations

import os
import select
import socket
import struct

from controller.switch import p4names as N
from controller.switch.p4rt import PacketIn

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4        # sll_pkttype of a frame we sent ourselves
PACKET_IN = struct.Struct("!HB")    # packet_in_t: bit<16> ingress_port, bit<8> reason
PACKET_OUT = struct.Struct("!HB")   # packet_out_t: bit<16> egress_port, bit<8> flags
RCVBUF = 4 << 20


class CpuPortError(OSError):
    pass


class CpuPort:
    def __init__(self, intf: str):
        self.intf = intf
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                      socket.htons(ETH_P_ALL))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            self.sock.bind((intf, 0))
        except OSError as exc:
            raise CpuPortError(f"CPU port interface {intf}: {exc}") from None
        self.sock.setblocking(False)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.counters = {"cpu_rx_short": 0}

    def packet_out(self, payload: bytes, egress_port: int = 0, flags: int = 0) -> None:
        self.sock.send(PACKET_OUT.pack(egress_port, flags) + payload)

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"w")
        except BlockingIOError:
            pass                     # a wake-up is pending already

    def packet_in(self, timeout: float = 1.0) -> PacketIn | None:
        """The next punted frame, or None when ``timeout`` passes or :meth:`wake`
        is called."""
        while True:
            pin = self._recv()
            if pin is not None:
                return pin
            r, _w, _x = select.select([self.sock, self._wake_r], [], [], timeout)
            if self._wake_r in r:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
                return None
            if not r:
                return None
            timeout = 0

    def _recv(self) -> PacketIn | None:
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return None
            if addr[2] == PACKET_OUTGOING:
                continue
            if len(data) < PACKET_IN.size:
                self.counters["cpu_rx_short"] += 1
                continue
            port, reason = PACKET_IN.unpack_from(data)
            return PacketIn(data[PACKET_IN.size:], {N.PACKET_IN_INGRESS_PORT: port,
                                                    N.PACKET_IN_REASON: reason})

    def close(self) -> None:
        self.sock.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
