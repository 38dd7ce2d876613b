"""Scapy layers for the DMSC frame, bound to EtherType 0x88B5.

Field for field the same as p4src/include/headers.p4 and byte for byte the
same as traffic/wire/codec.py (tests check both):

    Ether | DMSC (44 bytes) | ProbeRecord x rec_count (28 bytes each) | TLV ...

Constants (message types, TLV types, status codes) are codec's and defs'.
Helpers at the bottom build the common frames from names, so callers never
compute keys by hand. For building frames once and inspecting them; hot paths
use the codec.
"""
from __future__ import annotations

import json
import struct

from scapy.fields import (BitField, ByteEnumField, ByteField, FieldLenField,
                          FlagsField, IntField, PacketListField, ShortField,
                          StrLenField, XBitField)
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Padding, bind_layers

from traffic.wire import defs, names
from traffic.wire.codec import (BROADCAST, DEFAULT_HOP_LIMIT, TLV_BODY, TLV_DST_NAME, TLV_METHOD,
                                TLV_PROBE_RECORDS, TLV_SRC_NAME, TLV_STATUS, TLV_TYPES,
                                STATUS_OK, TlvReader)


class TLV(Packet):
    name = "DMSC TLV"
    fields_desc = [
        ByteEnumField("type", 0, TLV_TYPES),
        FieldLenField("length", None, fmt="H", length_of="value"),
        StrLenField("value", b"", length_from=lambda p: p.length),
    ]

    def extract_padding(self, s):
        return b"", s


class ProbeRecord(Packet):
    name = "DMSC probe record"
    fields_desc = [
        IntField("switch_id", 0),
        ShortField("ingress_port", 0),
        ShortField("egress_port", 0),
        BitField("ingress_ts", 0, 48),
        BitField("egress_ts", 0, 48),
        IntField("enq_qdepth", 0),
        IntField("deq_timedelta", 0),
    ]

    def extract_padding(self, s):
        return b"", s


class DMSC(TlvReader, Packet):
    name = "DMSC"
    fields_desc = [
        ByteField("version", defs.DMSC_VERSION),
        ByteEnumField("type", defs.TYPE_REQUEST, defs.TYPE_NAMES),
        FlagsField("flags", 0, 8, ["PROBE_FULL"]),
        ByteField("hop_limit", DEFAULT_HOP_LIMIT),
        IntField("msg_id", 0),
        XBitField("dst_key", 0, names.KEY_BITS),
        XBitField("src_key", 0, names.KEY_BITS),
        FieldLenField("rec_count", None, fmt="B", count_of="records"),
        ByteField("reserved", 0),
        FieldLenField("tlv_len", None, fmt="H", length_of="tlvs"),
        PacketListField("records", [], ProbeRecord,
                        count_from=lambda p: p.rec_count),
        PacketListField("tlvs", [], TLV, length_from=lambda p: p.tlv_len),
    ]

    def guess_payload_class(self, payload):
        return Padding   # bytes after the TLVs are Ethernet padding

    # -- reading -------------------------------------------------------
    def _tlv_pairs(self):
        return ((t.type, bytes(t.value)) for t in self.tlvs)

    def status(self) -> tuple[int, str] | None:
        raw = self.tlv(TLV_STATUS)
        if raw is None or len(raw) < 2:
            return None
        return struct.unpack("!H", raw[:2])[0], raw[2:].decode("utf-8", "replace")


bind_layers(Ether, DMSC, type=defs.ETHERTYPE_DMSC)


# -- building ---------------------------------------------------------------
def tlv_text(tlv_type: int, text: str) -> TLV:
    return TLV(type=tlv_type, value=text.encode("utf-8"))


def tlv_status(code: int, text: str = "") -> TLV:
    return TLV(type=TLV_STATUS, value=struct.pack("!H", code) + text.encode("utf-8"))


def frame(msg_type: int, dst: str, src: str, *, msg_id: int = 0,
          tlvs=(), hop_limit: int = DEFAULT_HOP_LIMIT,
          eth_src: str = "00:00:00:00:00:00", eth_dst: str = BROADCAST,
          records=()) -> Ether:
    """A frame addressed by name: keys computed here, names carried as TLVs."""
    return Ether(src=eth_src, dst=eth_dst, type=defs.ETHERTYPE_DMSC) / DMSC(
        type=msg_type, hop_limit=hop_limit, msg_id=msg_id,
        dst_key=names.name_key(dst), src_key=names.name_key(src),
        records=list(records),
        tlvs=[tlv_text(TLV_DST_NAME, names.normalize(dst)),
              tlv_text(TLV_SRC_NAME, names.normalize(src)), *tlvs])


def request(dst: str, src: str, method: str, args, *, msg_id: int, **kw) -> Ether:
    body = json.dumps(args, separators=(",", ":")).encode("utf-8")
    return frame(defs.TYPE_REQUEST, dst, src, msg_id=msg_id,
                 tlvs=[tlv_text(TLV_METHOD, method), TLV(type=TLV_BODY, value=body)], **kw)


def response(req: DMSC, src: str, result, **kw) -> Ether:
    """The response to ``req``, routed by name back to its source."""
    body = json.dumps(result, separators=(",", ":")).encode("utf-8")
    return frame(defs.TYPE_RESPONSE, req.src_name or "/", src, msg_id=req.msg_id,
                 tlvs=[tlv_status(STATUS_OK), TLV(type=TLV_BODY, value=body)], **kw)


def error(req: DMSC, src: str, code: int, text: str, **kw) -> Ether:
    return frame(defs.TYPE_ERROR, req.src_name or "/", src, msg_id=req.msg_id,
                 tlvs=[tlv_status(code, text)], **kw)


def probe(dst: str, src: str, *, msg_id: int, **kw) -> Ether:
    return frame(defs.TYPE_PROBE, dst, src, msg_id=msg_id, **kw)


def probe_reply(probe_frame: DMSC, src: str, **kw) -> Ether:
    """Echo the forward-path records back in a TLV (the reply is not a probe,
    so the return path adds none)."""
    recs = b"".join(bytes(r) for r in probe_frame.records)
    return frame(defs.TYPE_PROBE_REPLY, probe_frame.src_name or "/", src,
                 msg_id=probe_frame.msg_id,
                 tlvs=[TLV(type=TLV_PROBE_RECORDS, value=recs)], **kw)


def records_from_tlv(raw: bytes) -> list[ProbeRecord]:
    if len(raw) % defs.PROBE_REC_BYTES:
        raise ValueError(f"probe record TLV of {len(raw)} bytes is not a "
                         f"multiple of {defs.PROBE_REC_BYTES}")
    return [ProbeRecord(raw[i:i + defs.PROBE_REC_BYTES])
            for i in range(0, len(raw), defs.PROBE_REC_BYTES)]


def parse(raw: bytes) -> DMSC:
    """Parse a received frame; raise ValueError if it is not a whole DMSC frame."""
    pkt = Ether(raw)
    if DMSC not in pkt:
        raise ValueError(f"not a DMSC frame (EtherType {pkt.type:#06x})")
    d = pkt[DMSC]
    if d.version != defs.DMSC_VERSION:
        raise ValueError(f"DMSC version {d.version} is not {defs.DMSC_VERSION}")
    if len(d.records) != d.rec_count or sum(len(t) for t in d.tlvs) != d.tlv_len:
        raise ValueError("DMSC frame is truncated")
    return d
