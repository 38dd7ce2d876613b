"""An attacker's tools for the security tests, written from the docs alone.

Frames are built from docs/wire-format.md and docs/spa.md: nothing here imports the
project's wire code or announce helpers, which share the assumptions under test.
(``crc32_twin``, the CRC-32 forger, is the testbed's own attack tool,
dmsc/attacks.py: a computation, not a frame.)
"""
from __future__ import annotations

import json as _json
import os as _os
import select as _select
import socket as _socket
import struct as _struct
import time as _time
import zlib

from dmsc.attacks import crc32_twin  # noqa: F401  (re-exported for the tests)

ETHERTYPE = 0x88B5
T_REQUEST, T_RESPONSE, T_ANNOUNCE, T_ACK, T_NACK, T_PROBE_REPLY, T_WITHDRAW = 1, 2, 4, 5, 6, 11, 12
T_HELLO, TLV_HELLO, TLV_AUTH = 7, 11, 13
TLV_DST, TLV_SRC, TLV_METHOD, TLV_BODY, TLV_PREFIX, TLV_SIG, TLV_KEY_ID, TLV_TS, TLV_NONCE = \
    1, 2, 3, 4, 6, 7, 8, 9, 10


def name_key(name: str) -> bytes:
    """128 bits: CRC-32 of each of the first 4 components, first most significant."""
    parts = [p for p in name.split("/") if p][:4]
    words = [zlib.crc32(p.encode()) for p in parts] + [0] * (4 - len(parts))
    return _struct.pack("!4I", *words)


def _pb_str(field: int, text: str) -> bytes:
    data = text.encode()
    return bytes([field << 3 | 2, len(data)]) + data


def _pb_uint(field: int, value: int) -> bytes:
    out = bytes([field << 3])
    while True:
        b, value = value & 0x7F, value >> 7
        out += bytes([b | (0x80 if value else 0)])
        if not value:
            return out


def hello_body(router: str, heard: str) -> bytes:
    """A hello body (docs/wire-format.md TLV 11, fields of controller/proto/routing.proto's
    Hello, encoded by hand): ``router`` on port 1, hellos every 640 ms, a dead interval
    of a week, ``heard`` listed."""
    return (_pb_str(1, router) + _pb_uint(2, 3) + _pb_uint(3, 1) + _pb_uint(4, 640)
            + _pb_uint(5, 7 * 24 * 3600 * 1000) + _pb_str(6, heard))


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def frame(msg_type: int, dst: str, src: str, tlvs=(), *, msg_id: int = 0, hop_limit: int = 64,
          eth_src: str, eth_dst: str = "ff:ff:ff:ff:ff:ff", src_key: bytes | None = None) -> bytes:
    body = [(TLV_DST, dst.encode()), (TLV_SRC, src.encode()), *tlvs]
    tl = b"".join(_struct.pack("!BH", t, len(v)) + v for t, v in body)
    hdr = _struct.pack("!BBBBI16s16sBBH", 1, msg_type, 0, hop_limit, msg_id, name_key(dst),
                       src_key if src_key is not None else name_key(src), 0, 0, len(tl))
    return mac_bytes(eth_dst) + mac_bytes(eth_src) + _struct.pack("!H", ETHERTYPE) + hdr + tl


def parse(raw: bytes) -> dict | None:
    if len(raw) < 58 or _struct.unpack_from("!H", raw, 12)[0] != ETHERTYPE:
        return None
    _v, t, _f, hop, mid, dk, sk, rc, _r, tlen = _struct.unpack_from("!BBBBI16s16sBBH", raw, 14)
    off, tlvs = 58 + 28 * rc, {}
    end = off + tlen
    while off + 3 <= end:
        tt, ln = _struct.unpack_from("!BH", raw, off)
        tlvs.setdefault(tt, raw[off + 3:off + 3 + ln])
        off += 3 + ln
    return {"type": t, "msg_id": mid, "hop_limit": hop, "tlvs": tlvs,
            "dst": tlvs.get(TLV_DST, b"").decode(errors="replace"),
            "src": tlvs.get(TLV_SRC, b"").decode(errors="replace")}


def signed_announcement(key_pem: bytes, prefix: str, msg_type: int = T_ANNOUNCE,
                        ts_ns: int | None = None) -> list[tuple[int, bytes]]:
    """docs/spa.md: Ed25519 over "DMSC-announce-v1\\0" || (u16 len || bytes) of type
    byte, prefix, key id, timestamp u64, nonce; the key id is the hex of the first 8
    bytes of SHA-256 over the raw 32-byte public key."""
    import hashlib
    from cryptography.hazmat.primitives import serialization
    priv = serialization.load_pem_private_key(key_pem, password=None)
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(pub).digest()[:8].hex().encode()
    ts = _struct.pack("!Q", _time.time_ns() if ts_ns is None else ts_ns)
    nonce = _os.urandom(16)
    msg = b"DMSC-announce-v1\0" + b"".join(
        _struct.pack("!H", len(x)) + x for x in (bytes([msg_type]), prefix.encode(), key_id, ts, nonce))
    return [(TLV_PREFIX, prefix.encode()), (TLV_KEY_ID, key_id), (TLV_TS, ts),
            (TLV_NONCE, nonce), (TLV_SIG, priv.sign(msg))]


class Link:
    """A raw socket on one interface, for EtherType 0x88B5 only."""

    def __init__(self, iface: str):
        self.s = _socket.socket(_socket.AF_PACKET, _socket.SOCK_RAW, _socket.htons(ETHERTYPE))
        self.s.bind((iface, ETHERTYPE))

    def send(self, raw: bytes) -> None:
        self.s.send(raw)

    def recv_until(self, want, timeout: float):
        deadline = _time.monotonic() + timeout
        while (left := deadline - _time.monotonic()) > 0:
            if not _select.select([self.s], [], [], left)[0]:
                break
            f = parse(self.s.recv(65535))
            if f is not None and want(f):
                return f
        return None


def main(argv=None) -> int:
    """Run in a pod's namespace: ``python -m tests.support.attacker CMD ...``; prints JSON."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["announce", "withdraw", "requests", "probe-replies",
                                    "hellos"])
    ap.add_argument("--iface", required=True)
    ap.add_argument("--mac", required=True)
    ap.add_argument("--key")
    ap.add_argument("--prefix")
    ap.add_argument("--src", default="/")
    ap.add_argument("--dst", default="/dmsc/sw")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--msg-id", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.005)
    ap.add_argument("--timeout", type=float, default=3.0)
    a = ap.parse_args(argv)
    link = Link(a.iface)
    if a.cmd in ("announce", "withdraw"):
        kind = T_ANNOUNCE if a.cmd == "announce" else T_WITHDRAW
        tlvs = signed_announcement(open(a.key, "rb").read(), a.prefix, kind)
        mid = int.from_bytes(_os.urandom(4), "big")
        link.send(frame(kind, "/dmsc/sw", a.src, tlvs, msg_id=mid, hop_limit=1,
                        eth_src=a.mac))
        got = link.recv_until(lambda f: f["type"] in (T_ACK, T_NACK) and f["msg_id"] == mid,
                              a.timeout)
        if got is None:
            print(_json.dumps({"answer": None}))
            return 0
        body = _json.loads(got["tlvs"].get(TLV_BODY, b"{}") or b"{}")
        print(_json.dumps({"answer": "ack" if got["type"] == T_ACK else "nack", "body": body}))
        return 0
    sent, answers = 0, 0
    for i in range(a.count):
        if a.cmd == "requests":         # RMI echo requests with whatever source we like
            raw = frame(T_REQUEST, a.dst, a.src, [(TLV_METHOD, b"echo"), (TLV_BODY, b"{}")],
                        msg_id=a.msg_id + i, eth_src=a.mac)
        elif a.cmd == "hellos":         # a neighbour's hello asking a huge dead interval
            raw = frame(T_HELLO, "/dmsc/sw", a.src, [(TLV_HELLO, hello_body(a.prefix, a.dst)),
                                                     (TLV_AUTH, _os.urandom(32))],
                        msg_id=a.msg_id + i, hop_limit=1, eth_src=a.mac)
        else:                           # probe replies to an SG, ids guessed in a row
            raw = frame(T_PROBE_REPLY, a.dst, a.src, msg_id=a.msg_id + i, eth_src=a.mac)
        link.send(raw)
        sent += 1
        if link.recv_until(lambda f: f["type"] in (T_RESPONSE,), a.interval) is not None:
            answers += 1
    print(_json.dumps({"sent": sent, "answers": answers}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
