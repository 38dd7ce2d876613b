"""Service-prefix announcements and withdrawals (DMSC type-1 signaling).

A pod announces each prefix it serves to its SG in a frame of type
``announce`` (withdraws with ``withdraw``), carrying the prefix, the key id of
the pod's Ed25519 key, a timestamp (ns since the epoch), a random nonce and a
signature. The signature covers :func:`signed_bytes`: the message type, prefix,
key id, timestamp and nonce, TLV-encoded so that no two different tuples give
the same bytes, behind a context string so that a signature made for anything
else never verifies here. An announcement's signature cannot serve as a
withdrawal's (the type is signed).

The SG answers with ``announce_ack`` (JSON body: the lease granted) or
``announce_nack`` (status ``refused``; JSON body: the SPA's state, the reason
and a text). Both are sent straight out of the pod's port.

The key id is the first 8 bytes of SHA-256 over the raw 32-byte public key, in
hex: what the SPA's registry is indexed by.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

from traffic.wire import codec, defs, names

CONTEXT = b"DMSC-announce-v1\x00"
NONCE_BYTES = 16
KINDS = {defs.TYPE_ANNOUNCE: "announce", defs.TYPE_WITHDRAW: "withdraw"}


class BadAnnouncement(ValueError):
    """A frame that is not a well-formed announcement; ``reason`` names why."""

    def __init__(self, reason: str, text: str):
        self.reason = reason
        super().__init__(f"{reason}: {text}")


def key_id_of(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).digest()[:8].hex()


def signed_bytes(msg_type: int, prefix: str, key_id: str, timestamp_ns: int,
                 nonce: bytes) -> bytes:
    parts = [bytes([msg_type]), prefix.encode(), key_id.encode(),
             struct.pack("!Q", timestamp_ns), nonce]
    return CONTEXT + b"".join(struct.pack("!H", len(p)) + p for p in parts)


@dataclass(frozen=True)
class Announcement:
    msg_type: int          # defs.TYPE_ANNOUNCE or defs.TYPE_WITHDRAW
    prefix: str
    key_id: str
    timestamp_ns: int
    nonce: bytes
    signature: bytes
    src_name: str = "/"
    msg_id: int = 0

    @property
    def kind(self) -> str:
        return KINDS[self.msg_type]

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.msg_type, self.prefix, self.key_id, self.timestamp_ns,
                            self.nonce)

    def encode(self, *, eth_src: str, eth_dst: str = codec.BROADCAST) -> bytes:
        """The frame, addressed to the gateway (link-local ``/dmsc/sw``)."""
        tlvs = [(codec.TLV_PREFIX, self.prefix.encode()),
                (codec.TLV_KEY_ID, self.key_id.encode()),
                (codec.TLV_TIMESTAMP, struct.pack("!Q", self.timestamp_ns)),
                (codec.TLV_NONCE, self.nonce),
                (codec.TLV_SIGNATURE, self.signature)]
        return codec.encode(self.msg_type, names.switch_name(), self.src_name, tlvs,
                            msg_id=self.msg_id, hop_limit=1, eth_src=eth_src, eth_dst=eth_dst)

    @classmethod
    def from_frame(cls, f: codec.Frame) -> "Announcement":
        """Raise BadAnnouncement (with a reason) unless ``f`` is a whole one."""
        if f.type not in KINDS:
            raise BadAnnouncement("bad_type", f"type {f.type} is not announce/withdraw")
        fields = {}
        for name, tlv in (("prefix", codec.TLV_PREFIX), ("key_id", codec.TLV_KEY_ID),
                          ("timestamp", codec.TLV_TIMESTAMP), ("nonce", codec.TLV_NONCE),
                          ("signature", codec.TLV_SIGNATURE)):
            value = f.tlv(tlv)
            if value is None:
                raise BadAnnouncement("missing_tlv", f"no {name} TLV")
            fields[name] = value
        if len(fields["timestamp"]) != 8:
            raise BadAnnouncement("bad_tlv", "timestamp TLV is not 8 bytes")
        try:
            prefix = names.normalize(fields["prefix"].decode("utf-8"))
            names.prefix_key(prefix)
            key_id = fields["key_id"].decode("ascii")
            src = names.normalize(f.src_name or "/")
        except (UnicodeDecodeError, names.InvalidName) as exc:
            raise BadAnnouncement("bad_name", str(exc)) from None
        return cls(f.type, prefix, key_id, struct.unpack("!Q", fields["timestamp"])[0],
                   fields["nonce"], fields["signature"], src, f.msg_id)


def answer(ann: Announcement, src: str, *, ok: bool, body: dict, eth_src: str,
           eth_dst: str) -> bytes:
    """The SG's ack (``ok``) or nack to an announcement, routed to its source."""
    tlvs = [(codec.TLV_PREFIX, ann.prefix.encode()),
            (codec.TLV_BODY, json.dumps(body, separators=(",", ":")).encode())]
    if not ok:
        tlvs.append(codec.status_tlv(codec.STATUS_REFUSED, body.get("reason", "")))
    return codec.encode(defs.TYPE_ANNOUNCE_ACK if ok else defs.TYPE_ANNOUNCE_NACK,
                        ann.src_name, src, tlvs, msg_id=ann.msg_id, hop_limit=1,
                        eth_src=eth_src, eth_dst=eth_dst)
