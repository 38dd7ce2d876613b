"""Scapy layers for the DMSC frame, bound to EtherType 0x88B5.

Field for field the same as p4src/include/headers.p4 (tests check it):

    Ether | DMSC (44 bytes) | ProbeRecord x rec_count (28 bytes each) | TLV ...

The message types, TLV types and status codes are the wire format's
(docs/wire-format.md). Helpers at the bottom build the common frames from
names, so callers never compute keys by hand.
"""
from __future__ import annotations

import json
import struct

from scapy.fields import (BitField, ByteEnumField, ByteField, FieldLenField,
                          FlagsField, IntField, PacketListField, ShortField,
                          StrLenField, XBitField)
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Padding, bind_layers

from traffic import names

ETHERTYPE_DMSC = 0x88B5
DMSC_VERSION = 1
HDR_BYTES = 44
PROBE_REC_BYTES = 28
MAX_PROBE_RECORDS = 12
DEFAULT_HOP_LIMIT = 32
BROADCAST = "ff:ff:ff:ff:ff:ff"

# Message types (dmsc.type); same values as TYPE_* in define.p4.
REQUEST = 1
RESPONSE = 2
ERROR = 3
ANNOUNCE = 4
ANNOUNCE_ACK = 5
ANNOUNCE_NACK = 6
HELLO = 7
LSA = 8
LSA_ACK = 9
PROBE = 10
PROBE_REPLY = 11
WITHDRAW = 12

MSG_TYPES = {
    REQUEST: "request", RESPONSE: "response", ERROR: "error",
    ANNOUNCE: "announce", ANNOUNCE_ACK: "announce_ack",
    ANNOUNCE_NACK: "announce_nack", HELLO: "hello", LSA: "lsa",
    LSA_ACK: "lsa_ack", PROBE: "probe", PROBE_REPLY: "probe_reply",
    WITHDRAW: "withdraw",
}

FLAG_PROBE_FULL = 0x01

# TLV types.
TLV_DST_NAME = 1      # UTF-8 destination name (the textual check of dst_key)
TLV_SRC_NAME = 2      # UTF-8 source name
TLV_METHOD = 3        # UTF-8 RMI method
TLV_BODY = 4          # request arguments / response result (JSON, UTF-8)
TLV_STATUS = 5        # u16 status code + UTF-8 text
TLV_PREFIX = 6        # UTF-8 service prefix (announce / withdraw)
TLV_SIGNATURE = 7     # signature over the frame's signed fields
TLV_KEY_ID = 8        # UTF-8 key identifier
TLV_TIMESTAMP = 9     # u64 nanoseconds since the epoch (freshness)
TLV_NONCE = 10        # random bytes (replay protection)
TLV_HELLO = 11        # hello body (routing issue)
TLV_LSA = 12          # LSA body (routing issue)
TLV_AUTH = 13         # HMAC over hello/LSA bodies (routing issue)
TLV_PROBE_RECORDS = 14  # forward-path probe records echoed in a probe reply

TLV_TYPES = {
    TLV_DST_NAME: "dst_name", TLV_SRC_NAME: "src_name", TLV_METHOD: "method",
    TLV_BODY: "body", TLV_STATUS: "status", TLV_PREFIX: "prefix",
    TLV_SIGNATURE: "signature", TLV_KEY_ID: "key_id",
    TLV_TIMESTAMP: "timestamp", TLV_NONCE: "nonce", TLV_HELLO: "hello",
    TLV_LSA: "lsa", TLV_AUTH: "auth", TLV_PROBE_RECORDS: "probe_records",
}

# Status codes carried in TLV_STATUS (ERROR frames, announce nacks).
STATUS_OK = 0
STATUS_NO_ROUTE = 1         # a switch had no FIB entry for the destination
STATUS_UNKNOWN_NAME = 2     # the pod serves no instance of that name
STATUS_UNKNOWN_METHOD = 3
STATUS_BAD_REQUEST = 4      # missing or malformed TLVs
STATUS_APP_ERROR = 5        # the method raised
STATUS_REFUSED = 6          # announcement refused (SPA said no, bad signature)

STATUS_NAMES = {
    STATUS_OK: "ok", STATUS_NO_ROUTE: "no_route",
    STATUS_UNKNOWN_NAME: "unknown_name", STATUS_UNKNOWN_METHOD: "unknown_method",
    STATUS_BAD_REQUEST: "bad_request", STATUS_APP_ERROR: "app_error",
    STATUS_REFUSED: "refused",
}


class _TlvReader:
    """TLV access shared by the Scapy layer and the fast-path Frame."""

    def _tlv_pairs(self):
        raise NotImplementedError

    def tlv(self, tlv_type: int, default=None) -> bytes | None:
        """Value of the first TLV of that type."""
        for t, v in self._tlv_pairs():
            if t == tlv_type:
                return v
        return default

    def text(self, tlv_type: int, default: str | None = None) -> str | None:
        raw = self.tlv(tlv_type)
        return default if raw is None else raw.decode("utf-8", "replace")

    @property
    def dst_name(self) -> str | None:
        return self.text(TLV_DST_NAME)

    @property
    def src_name(self) -> str | None:
        return self.text(TLV_SRC_NAME)


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


class DMSC(_TlvReader, Packet):
    name = "DMSC"
    fields_desc = [
        ByteField("version", DMSC_VERSION),
        ByteEnumField("type", REQUEST, MSG_TYPES),
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


bind_layers(Ether, DMSC, type=ETHERTYPE_DMSC)


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
    return Ether(src=eth_src, dst=eth_dst, type=ETHERTYPE_DMSC) / DMSC(
        type=msg_type, hop_limit=hop_limit, msg_id=msg_id,
        dst_key=names.name_key(dst), src_key=names.name_key(src),
        records=list(records),
        tlvs=[tlv_text(TLV_DST_NAME, names.normalize(dst)),
              tlv_text(TLV_SRC_NAME, names.normalize(src)), *tlvs])


def request(dst: str, src: str, method: str, args, *, msg_id: int, **kw) -> Ether:
    body = json.dumps(args, separators=(",", ":")).encode("utf-8")
    return frame(REQUEST, dst, src, msg_id=msg_id,
                 tlvs=[tlv_text(TLV_METHOD, method), TLV(type=TLV_BODY, value=body)], **kw)


def response(req: DMSC, src: str, result, **kw) -> Ether:
    """The response to ``req``, routed by name back to its source."""
    body = json.dumps(result, separators=(",", ":")).encode("utf-8")
    return frame(RESPONSE, req.src_name or "/", src, msg_id=req.msg_id,
                 tlvs=[tlv_status(STATUS_OK), TLV(type=TLV_BODY, value=body)], **kw)


def error(req: DMSC, src: str, code: int, text: str, **kw) -> Ether:
    return frame(ERROR, req.src_name or "/", src, msg_id=req.msg_id,
                 tlvs=[tlv_status(code, text)], **kw)


def probe(dst: str, src: str, *, msg_id: int, **kw) -> Ether:
    return frame(PROBE, dst, src, msg_id=msg_id, **kw)


def probe_reply(probe_frame: DMSC, src: str, **kw) -> Ether:
    """Echo the forward-path records back in a TLV (the reply is not a probe,
    so the return path adds none)."""
    recs = b"".join(bytes(r) for r in probe_frame.records)
    return frame(PROBE_REPLY, probe_frame.src_name or "/", src,
                 msg_id=probe_frame.msg_id,
                 tlvs=[TLV(type=TLV_PROBE_RECORDS, value=recs)], **kw)


def records_from_tlv(raw: bytes) -> list[ProbeRecord]:
    if len(raw) % PROBE_REC_BYTES:
        raise ValueError(f"probe record TLV of {len(raw)} bytes is not a "
                         f"multiple of {PROBE_REC_BYTES}")
    return [ProbeRecord(raw[i:i + PROBE_REC_BYTES])
            for i in range(0, len(raw), PROBE_REC_BYTES)]


def parse(raw: bytes) -> DMSC:
    """Parse a received frame; raise ValueError if it is not a whole DMSC frame."""
    pkt = Ether(raw)
    if DMSC not in pkt:
        raise ValueError(f"not a DMSC frame (EtherType {pkt.type:#06x})")
    d = pkt[DMSC]
    if d.version != DMSC_VERSION:
        raise ValueError(f"DMSC version {d.version} is not {DMSC_VERSION}")
    if len(d.records) != d.rec_count or sum(len(t) for t in d.tlvs) != d.tlv_len:
        raise ValueError("DMSC frame is truncated")
    return d


# -- fast codec ----------------------------------------------------------------
# The same frame, with struct instead of Scapy: what the agents use for hellos
# and LSAs (Scapy costs ~0.5 ms a frame, which at 100 ms hellos starved a
# 2-core machine). tests/unit/test_wire_format.py checks it byte for byte
# against the Scapy layers above.
_ETH = struct.Struct("!6s6sH")
_HDR = struct.Struct("!BBBBI16s16sBBH")
_TLV = struct.Struct("!BH")
assert _HDR.size == HDR_BYTES


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


class Frame(_TlvReader):
    """A decoded DMSC frame (fast path). TLVs are ``[(type, value), ...]``."""
    __slots__ = ("eth_dst", "eth_src", "version", "type", "flags", "hop_limit", "msg_id",
                 "dst_key", "src_key", "rec_count", "records", "tlvs")

    def _tlv_pairs(self):
        return self.tlvs


def encode(msg_type: int, dst: str, src: str, tlvs=(), *, msg_id: int = 0,
           hop_limit: int = DEFAULT_HOP_LIMIT, flags: int = 0,
           eth_src: str = "00:00:00:00:00:00", eth_dst: str = BROADCAST) -> bytes:
    """Bytes of the frame ``frame()`` builds, names as TLVs 1 and 2 first."""
    body = [(TLV_DST_NAME, names.normalize(dst).encode()),
            (TLV_SRC_NAME, names.normalize(src).encode()), *tlvs]
    tl = b"".join(_TLV.pack(t, len(v)) + v for t, v in body)
    return (_ETH.pack(_mac(eth_dst), _mac(eth_src), ETHERTYPE_DMSC)
            + _HDR.pack(DMSC_VERSION, msg_type, flags, hop_limit, msg_id,
                        names.key_bytes(names.name_key(dst)),
                        names.key_bytes(names.name_key(src)), 0, 0, len(tl))
            + tl)


def decode(raw: bytes) -> Frame:
    """Decode a whole frame; ValueError if it is not one (same rules as parse)."""
    if len(raw) < _ETH.size + HDR_BYTES:
        raise ValueError("DMSC frame is truncated")
    dst, src, etype = _ETH.unpack_from(raw)
    if etype != ETHERTYPE_DMSC:
        raise ValueError(f"not a DMSC frame (EtherType {etype:#06x})")
    f = Frame()
    (f.version, f.type, f.flags, f.hop_limit, f.msg_id, dk, sk, f.rec_count, _r,
     tlv_len) = _HDR.unpack_from(raw, _ETH.size)
    if f.version != DMSC_VERSION:
        raise ValueError(f"DMSC version {f.version} is not {DMSC_VERSION}")
    f.eth_dst, f.eth_src = dst.hex(":"), src.hex(":")
    f.dst_key, f.src_key = int.from_bytes(dk, "big"), int.from_bytes(sk, "big")
    off = _ETH.size + HDR_BYTES
    end_recs = off + f.rec_count * PROBE_REC_BYTES
    end = end_recs + tlv_len
    if end > len(raw):
        raise ValueError("DMSC frame is truncated")
    f.records = raw[off:end_recs]
    f.tlvs = []
    off = end_recs
    while off < end:
        if off + _TLV.size > end:
            raise ValueError("DMSC frame is truncated")
        t, ln = _TLV.unpack_from(raw, off)
        off += _TLV.size
        if off + ln > end:
            raise ValueError("DMSC frame is truncated")
        f.tlvs.append((t, raw[off:off + ln]))
        off += ln
    return f
