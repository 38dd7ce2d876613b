"""Send one announcement (or withdrawal) from a pod's namespace and print the
SG's answer as JSON: an operator's tool, and the tests' way of playing an
attacker (a forged signature, a stale timestamp, a replayed frame).

    python -m traffic.send_announcement --iface pod2-eth0 --key pod2.key --prefix /B/9
    ... --withdraw | --timestamp-offset -3600 | --bad-signature | --save F | --send-raw F

Prints ``{"answer": "ack"|"nack"|"none", "body": {...}, "prefix": ...}``;
exit status 0 on an ack, 1 on a nack or no answer, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from pathlib import Path

from traffic.identity import Identity, IdentityError
from traffic.wire import codec, defs, names
from traffic.wire.announcement import Announcement
from traffic.wire.link import RawLink


def wait_answer(link: RawLink, prefix: str, msg_id: int, timeout: float) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        raw = link.recv(max(0.0, end - time.monotonic()))
        if raw is None:
            continue
        try:
            f = codec.decode(raw)
        except ValueError:
            continue
        if f.type not in (defs.TYPE_ANNOUNCE_ACK, defs.TYPE_ANNOUNCE_NACK) \
                or f.msg_id != msg_id or f.text(codec.TLV_PREFIX) != prefix:
            continue
        body = json.loads(f.tlv(codec.TLV_BODY, b"{}") or b"{}")
        return {"answer": "ack" if f.type == defs.TYPE_ANNOUNCE_ACK else "nack",
                "body": body, "prefix": prefix, "from": f.src_name}
    return {"answer": "none", "body": {}, "prefix": prefix}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="send one signed announcement or withdrawal")
    ap.add_argument("--iface", required=True)
    ap.add_argument("--mac", default="00:00:00:00:00:00")
    ap.add_argument("--key", help="Ed25519 private key (PEM); needed unless --send-raw")
    ap.add_argument("--prefix")
    ap.add_argument("--src", help="source instance name (default: the prefix)")
    ap.add_argument("--withdraw", action="store_true")
    ap.add_argument("--timestamp-offset", type=float, default=0.0,
                    help="seconds added to the timestamp (a stale one: -3600)")
    ap.add_argument("--bad-signature", action="store_true", help="flip a bit of the signature")
    ap.add_argument("--save", help="also write the frame sent to this file")
    ap.add_argument("--send-raw", help="send this saved frame again (a replay)")
    ap.add_argument("--timeout", type=float, default=3.0)
    a = ap.parse_args(argv)
    try:
        if a.send_raw:
            frame = Path(a.send_raw).read_bytes()
            ann = Announcement.from_frame(codec.decode(frame))
        else:
            if not (a.key and a.prefix):
                ap.error("--key and --prefix are needed (or --send-raw)")
            ident = Identity.load(a.key)
            prefix = names.normalize(a.prefix)
            ann = ident.announcement(prefix, withdraw=a.withdraw, src=a.src or prefix,
                                     msg_id=random.randrange(1, 1 << 31),
                                     timestamp_ns=time.time_ns() + int(a.timestamp_offset * 1e9))
            if a.bad_signature:
                sig = bytearray(ann.signature)
                sig[0] ^= 0x01
                ann = dataclasses.replace(ann, signature=bytes(sig))
            frame = ann.encode(eth_src=a.mac)
        if a.save:
            Path(a.save).write_bytes(frame)
    except (OSError, ValueError, IdentityError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    with RawLink(a.iface) as link:
        sent_at = time.monotonic()
        link.send(frame)
        out = wait_answer(link, ann.prefix, ann.msg_id, a.timeout)
    out["sent_at"] = sent_at          # CLOCK_MONOTONIC: the agents' clock too
    print(json.dumps(out))
    return 0 if out["answer"] == "ack" else 1


if __name__ == "__main__":
    sys.exit(main())
