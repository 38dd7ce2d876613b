"""The DMSC frame without Scapy: constants, struct encoder and decoder.

    Ether (14) | DMSC header (44) | probe record x rec_count (28 each) | TLV ...

What the agents use for hellos, LSAs and punted frames, and the pods for their
hot path (Scapy costs ~0.5 ms a frame, which at 100 ms hellos starved a 2-core
machine). traffic/wire/layers.py defines the same frame in Scapy;
tests/unit/test_wire_format.py checks the two byte for byte, and both against
p4src/include/headers.p4. Message types and sizes come from define.p4 through
the generated traffic/wire/defs.py; TLV types and status codes exist only on
the hosts and are defined here. docs/wire-format.md is the prose version.
"""
from __future__ import annotations

import json
import struct

from traffic.wire import defs, names

DEFAULT_HOP_LIMIT = 64     # as IPv6: at least the diameter of every generated topology (ring:64: 32, a detour 34)
BROADCAST = "ff:ff:ff:ff:ff:ff"

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
TLV_HELLO = 11        # hello body (routing)
TLV_LSA = 12          # LSA body (routing)
TLV_AUTH = 13         # HMAC over hello/LSA bodies (routing)
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


class TlvReader:
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


# -- struct codec ----------------------------------------------------------------
# The same frame, with struct instead of Scapy: what the agents use for hellos
# and LSAs (Scapy costs ~0.5 ms a frame, which at 100 ms hellos starved a
# 2-core machine). tests/unit/test_wire_format.py checks it byte for byte
# against the Scapy layers above.
_ETH = struct.Struct("!6s6sH")
_HDR = struct.Struct("!BBBBI16s16sBBH")
_TLV = struct.Struct("!BH")
assert _HDR.size == defs.DMSC_HDR_BYTES


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


class Frame(TlvReader):
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
    return (_ETH.pack(_mac(eth_dst), _mac(eth_src), defs.ETHERTYPE_DMSC)
            + _HDR.pack(defs.DMSC_VERSION, msg_type, flags, hop_limit, msg_id,
                        names.key_bytes(names.name_key(dst)),
                        names.key_bytes(names.name_key(src)), 0, 0, len(tl))
            + tl)


def status_tlv(code: int, text: str = "") -> tuple[int, bytes]:
    return TLV_STATUS, struct.pack("!H", code) + text.encode("utf-8")


def error(req: TlvReader, src: str, code: int, text: str, **kw) -> bytes:
    """Bytes of the ERROR answering ``req`` (a decoded Frame), routed by name
    back to its source: the same frame as ``layers.error``."""
    return encode(defs.TYPE_ERROR, req.src_name or "/", src, [status_tlv(code, text)],
                  msg_id=req.msg_id, **kw)


def response(req: TlvReader, src: str, result, **kw) -> bytes:
    """Bytes of the RESPONSE to ``req`` (JSON ``result``): as ``layers.response``."""
    body = json.dumps(result, separators=(",", ":")).encode("utf-8")
    return encode(defs.TYPE_RESPONSE, req.src_name or "/", src,
                  [status_tlv(STATUS_OK), (TLV_BODY, body)], msg_id=req.msg_id, **kw)


def probe_reply(probe: "Frame", src: str, **kw) -> bytes:
    """Bytes of the reply to a probe, its forward-path records echoed in a
    TLV: as ``layers.probe_reply``."""
    return encode(defs.TYPE_PROBE_REPLY, probe.src_name or "/", src,
                  [(TLV_PROBE_RECORDS, probe.records)], msg_id=probe.msg_id, **kw)


def decode(raw: bytes) -> Frame:
    """Decode a whole frame; ValueError if it is not one (same rules as parse)."""
    if len(raw) < _ETH.size + defs.DMSC_HDR_BYTES:
        raise ValueError("DMSC frame is truncated")
    dst, src, etype = _ETH.unpack_from(raw)
    if etype != defs.ETHERTYPE_DMSC:
        raise ValueError(f"not a DMSC frame (EtherType {etype:#06x})")
    f = Frame()
    (f.version, f.type, f.flags, f.hop_limit, f.msg_id, dk, sk, f.rec_count, _r,
     tlv_len) = _HDR.unpack_from(raw, _ETH.size)
    if f.version != defs.DMSC_VERSION:
        raise ValueError(f"DMSC version {f.version} is not {defs.DMSC_VERSION}")
    f.eth_dst, f.eth_src = dst.hex(":"), src.hex(":")
    f.dst_key, f.src_key = int.from_bytes(dk, "big"), int.from_bytes(sk, "big")
    off = _ETH.size + defs.DMSC_HDR_BYTES
    end_recs = off + f.rec_count * defs.PROBE_REC_BYTES
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
