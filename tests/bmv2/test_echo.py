"""Echoes (link liveness) in the P4 program, with frames built from
docs/wire-format.md's "Echo" section and field table in Scapy: nothing here
uses the project's wire code (traffic/wire), which shares the assumptions
under test.

Port 1 is pod-facing, 2-4 core-facing (tests/bmv2/conftest.py).
"""
from __future__ import annotations

import struct
import zlib

import pytest
from scapy.fields import (BitField, ByteField, IntField, ShortField, StrFixedLenField)
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from controller.switch import p4names as N
from tests.bmv2.conftest import peer_mac, port_mac

ETHERTYPE = 0x88B5                 # docs/wire-format.md: Frame
T_ECHO = 13                        # Message types: echo
F_REFLECTED = 0x02                 # flags bit 1 ECHO_REFLECTED


class Hdr(Packet):
    """The fixed header (44 bytes), as docs/wire-format.md's table gives it."""
    name = "DMSC fixed header (from the doc)"
    fields_desc = [ByteField("version", 1), ByteField("type", T_ECHO), ByteField("flags", 0),
                   ByteField("hop_limit", 1), IntField("msg_id", 0),
                   StrFixedLenField("dst_key", b"\0" * 16, 16),
                   StrFixedLenField("src_key", b"\0" * 16, 16),
                   ByteField("rec_count", 0), ByteField("reserved", 0),
                   ShortField("tlv_len", 0)]


def key(name: str) -> bytes:
    parts = [p for p in name.split("/") if p][:4]
    return struct.pack("!4I", *([zlib.crc32(p.encode()) for p in parts] + [0] * (4 - len(parts))))


def tlvs(*pairs) -> bytes:
    return b"".join(struct.pack("!BH", t, len(v)) + v for t, v in pairs)


def echo(port: int, flags: int = 0, msg_id: int = 7) -> bytes:
    """An echo as the doc says the neighbour on ``port`` sends it."""
    body = tlvs((1, b"/dmsc/sw"), (2, b"/dmsc/sw/peer"))
    return bytes(Ether(dst=port_mac(port), src=peer_mac(port), type=ETHERTYPE)
                 / Hdr(flags=flags, msg_id=msg_id, dst_key=key("/dmsc/sw"),
                       src_key=key("/dmsc/sw/peer"), tlv_len=len(body)) / body)


def echo_rx(rig) -> dict[int, int]:
    cells = rig.sw.read_counter(N.COUNTER_ECHO_RX)
    return {p: cells.get(p, (0, 0))[0] for p in (1, 2, 3, 4)}


def nothing_else(rig, ports) -> None:
    """No frame on ``ports`` and none to the CPU."""
    assert rig.quiet(ports) == {p: 0 for p in ports}
    assert rig.packet_ins(1, timeout=0.2) == []


@pytest.mark.parametrize("port", [2, 4])
def test_an_echo_on_a_core_port_is_reflected_back_out_of_it_and_nowhere_else(rig, fib, port):
    rx0, drops0, punts0 = echo_rx(rig), rig.drops(), rig.punts()
    sent = echo(port, msg_id=0xABCD)
    rig.send(port, sent)
    raw = rig.recv(port)
    assert raw is not None, "the echo did not come back"
    back = Ether(raw)
    assert back.dst == peer_mac(port) and back.src == port_mac(port)
    assert back.type == ETHERTYPE
    h = Hdr(raw[14:58])
    assert h.type == T_ECHO and h.flags == F_REFLECTED
    # every other byte as sent: header (flags aside) and the TLVs
    assert raw[14:16] == sent[14:16] and raw[17:] == sent[17:]
    nothing_else(rig, [p for p in (1, 2, 3, 4)])
    assert echo_rx(rig) == rx0 and rig.drops() == drops0 and rig.punts() == punts0


def test_a_reflected_echo_back_at_its_sender_is_counted_by_port_and_dropped(rig, fib):
    rx0, drops0, punts0 = echo_rx(rig), rig.drops(), rig.punts()
    for _ in range(3):
        rig.send(3, echo(3, flags=F_REFLECTED))
    rig.send(2, echo(2, flags=F_REFLECTED))
    want = dict(rx0)
    want[3] += 3
    want[2] += 1
    assert rig.wait_counter(lambda: {"n": sum(echo_rx(rig).values())}, "n",
                            sum(want.values())) == sum(want.values())
    assert echo_rx(rig) == want
    nothing_else(rig, [1, 2, 3, 4])
    assert rig.drops() == drops0 and rig.punts() == punts0


@pytest.mark.parametrize("flags", [0, F_REFLECTED], ids=["echo", "forged reflected echo"])
def test_an_echo_on_a_pod_port_is_only_dropped_and_counted(rig, fib, flags):
    rx0, drops0, punts0 = echo_rx(rig), rig.drops(), rig.punts()
    rig.send(1, echo(1, flags=flags))
    got = rig.wait_counter(rig.drops, "echo_from_pod", drops0["echo_from_pod"] + 1)
    assert got == drops0["echo_from_pod"] + 1
    nothing_else(rig, [1, 2, 3, 4])
    want = dict(drops0)
    want["echo_from_pod"] += 1
    assert rig.drops() == want and rig.punts() == punts0 and echo_rx(rig) == rx0


def test_an_agents_echo_leaves_the_named_core_port_as_written(rig, fib):
    """The sending side: a packet-out to a core port goes out unchanged."""
    frame = echo(2)
    rig.sw.packet_out(frame, egress_port=3)
    raw = rig.recv(3)
    assert raw == frame
    nothing_else(rig, [1, 2, 4])
