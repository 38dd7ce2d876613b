"""The RMI-style client: ``Client(iface, "/A/1").call("/B/4", "echo", {...})``.

A call sends one REQUEST addressed by name (destination key + name TLVs) and
waits, with a deadline, for the RESPONSE or ERROR with the same msg_id routed
back to the caller's own name. Frames for other calls are not lost: they are
kept until their call asks for them.
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import struct
import sys
import time
from dataclasses import dataclass

from traffic.wire import codec, defs, names
from traffic.wire.link import RawLink

# Ethernet payload of a standard 1500-byte MTU plus the 14-byte header: the
# testbed sends every request in one frame and does not fragment.
MAX_FRAME_BYTES = 1514


class CallError(Exception):
    """Base of the client's errors."""
    status_name = "error"


class CallTimeout(CallError):
    status_name = "timeout"


class PayloadTooLarge(CallError):
    """The request does not fit in one frame: the testbed does not fragment."""
    status_name = "payload_too_large"


class RemoteError(CallError):
    def __init__(self, code: int, text: str, responder: str | None):
        self.code, self.text, self.responder = code, text, responder
        self.status_name = codec.STATUS_NAMES.get(code, str(code))
        super().__init__(f"{self.status_name} from {responder or '?'}: {text}")


@dataclass
class Reply:
    result: object
    responder: str       # the instance that answered (its name is the reply's source)
    rtt_s: float
    hops: int            # switches that forwarded the response (from its hop limit)


@dataclass
class ProbeReply:
    responder: str
    rtt_s: float
    hops: list           # per switch on the forward path, first hop first: dicts of
                         # switch_id, ingress/egress port, residence_us, enq_qdepth


_REC = struct.Struct("!IHH6s6sII")     # one probe record, as controller/agent/probes.py reads it
assert _REC.size == defs.PROBE_REC_BYTES


def probe_hops(raw: bytes) -> list[dict]:
    """The forward-path records of a probe reply (newest first on the wire),
    first hop first."""
    if len(raw) % _REC.size:
        raise ValueError(f"{len(raw)} bytes of probe records")
    out = []
    for i in range(0, len(raw), _REC.size):
        sid, ip, ep, its, ets, q, _d = _REC.unpack_from(raw, i)
        out.append({"switch_id": sid, "ingress_port": ip, "egress_port": ep,
                    "residence_us": int.from_bytes(ets, "big") - int.from_bytes(its, "big"),
                    "enq_qdepth": q})
    return out[::-1]


class Client:
    def __init__(self, iface: str, name: str, *, mac: str = "00:00:00:00:00:00",
                 gateway_mac: str = codec.BROADCAST, timeout: float = 2.0):
        self.name = names.normalize(name)
        self.mac, self.gateway_mac, self.timeout = mac, gateway_mac, timeout
        self.link = RawLink(iface)
        self._next_id = random.randrange(1, 1 << 31)
        self._early: dict[int, codec.Frame] = {}

    def close(self):
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, dst: str, method: str, args=None, *, timeout: float | None = None) -> Reply:
        """One request by name; the reply, or CallTimeout, RemoteError (an
        ERROR frame: its status and who sent it) or PayloadTooLarge. Frames are
        built and parsed with the struct codec: no Scapy on this path."""
        t0 = time.monotonic()
        msg_id = self.send_request(dst, method, args)
        pkt = self._wait(msg_id, t0 + (self.timeout if timeout is None else timeout))
        rtt = time.monotonic() - t0
        out = self.outcome(pkt, rtt)
        if isinstance(out, RemoteError):
            raise out
        return out

    def send_request(self, dst: str, method: str, args=None) -> int:
        """Send one REQUEST without waiting; its msg_id (the open loop,
        traffic/loadgen.py, matches the answers itself). PayloadTooLarge
        before anything is sent."""
        msg_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
        body = json.dumps({} if args is None else args, separators=(",", ":")).encode()
        frame = codec.encode(defs.TYPE_REQUEST, dst, self.name,
                             [(codec.TLV_METHOD, method.encode()), (codec.TLV_BODY, body)],
                             msg_id=msg_id, eth_src=self.mac, eth_dst=self.gateway_mac)
        if len(frame) > MAX_FRAME_BYTES:
            raise PayloadTooLarge(f"request of {len(frame)} bytes does not fit in one "
                                  f"{MAX_FRAME_BYTES}-byte frame (no fragmentation)")
        self.link.send(frame)
        return msg_id

    def next_answer(self, timeout: float):
        """The next RESPONSE or ERROR addressed to this caller within
        ``timeout`` seconds, as ``(msg_id, Reply or RemoteError)`` (the Reply's
        rtt_s is 0: the caller times it), or None."""
        raw = self.link.recv(timeout)
        if raw is None:
            return None
        try:
            pkt = codec.decode(raw)
        except ValueError:
            return None
        if pkt.type not in (defs.TYPE_RESPONSE, defs.TYPE_ERROR) or pkt.dst_name != self.name:
            return None
        return pkt.msg_id, self.outcome(pkt, 0.0)

    @staticmethod
    def outcome(pkt: codec.Frame, rtt: float):
        """A RESPONSE as a Reply, an ERROR as a RemoteError (returned, not raised)."""
        if pkt.type == defs.TYPE_ERROR:
            raw = pkt.tlv(codec.TLV_STATUS) or b"\xff\xff"
            code = int.from_bytes(raw[:2], "big") if len(raw) >= 2 else -1
            return RemoteError(code, raw[2:].decode("utf-8", "replace"), pkt.src_name)
        try:
            result = json.loads(pkt.tlv(codec.TLV_BODY, b"null") or b"null")
        except ValueError as exc:
            return RemoteError(codec.STATUS_BAD_REQUEST, f"unreadable reply body: {exc}",
                               pkt.src_name)
        return Reply(result, pkt.src_name, rtt, codec.DEFAULT_HOP_LIMIT - pkt.hop_limit)

    def probe(self, dst: str, *, timeout: float | None = None) -> "ProbeReply":
        """One PROBE to a name, as an SG's agent sends them: every switch on the
        forward path pushes a record, the instance that answers echoes them.
        The reply, or CallTimeout."""
        msg_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
        frame = codec.encode(defs.TYPE_PROBE, dst, self.name, msg_id=msg_id,
                             eth_src=self.mac, eth_dst=self.gateway_mac)
        t0 = time.monotonic()
        self.link.send(frame)
        pkt = self._wait(msg_id, t0 + (self.timeout if timeout is None else timeout),
                         types=(defs.TYPE_PROBE_REPLY, defs.TYPE_ERROR))
        rtt = time.monotonic() - t0
        if pkt.type == defs.TYPE_ERROR:
            raw = pkt.tlv(codec.TLV_STATUS) or b"\xff\xff"
            code = int.from_bytes(raw[:2], "big") if len(raw) >= 2 else -1
            raise RemoteError(code, raw[2:].decode("utf-8", "replace"), pkt.src_name)
        return ProbeReply(pkt.src_name, rtt, probe_hops(pkt.tlv(codec.TLV_PROBE_RECORDS, b"")))

    def _wait(self, msg_id: int, deadline: float,
              types=(defs.TYPE_RESPONSE, defs.TYPE_ERROR)) -> codec.Frame:
        if msg_id in self._early:
            return self._early.pop(msg_id)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeout(f"no reply to msg_id {msg_id} within the deadline")
            raw = self.link.recv(left)
            if raw is None:
                continue
            try:
                pkt = codec.decode(raw)
            except ValueError:
                continue
            if pkt.type not in types or pkt.dst_name != self.name:
                continue
            if pkt.msg_id == msg_id:
                return pkt
            if len(self._early) < 1024:       # a late reply to an earlier call, kept briefly
                self._early[pkt.msg_id] = pkt


def load(client, dst: str, method: str, args, *, count: int, interval: float,
         timeout: float, max_s: float = 600.0, clock=time.monotonic, sleep=time.sleep,
         stopped=lambda: False, record=None) -> dict:
    """At most ``count`` calls, one every ``interval`` seconds, and never
    longer than ``max_s`` seconds: successes, failures by status, the longest
    run of failures and latency percentiles in milliseconds. ``sent`` is the
    number of calls made (fewer than ``count`` when time ran out).
    ``record(dict)``, if given, gets every call as it ends: ``t`` (send time,
    ``clock``'s), ``latency_ms`` (None when it failed), ``responder`` (the
    instance that answered, or sent the error; None on a time-out) and
    ``status`` ("ok" or the error's status name), ``late_ms`` (how late the
    loop sent this call against its schedule after sleeping for it: the
    generator's own lateness, a fidelity monitor; None when the previous call
    took longer than the interval, so there was no sleep). The summary has
    ``late_p99_ms`` and ``late_max_ms`` over those calls."""
    ok, failed, worst_gap, gap_start = 0, 0, 0.0, None
    errors: dict[str, int] = {}
    responders: dict[str, int] = {}
    lat = []
    t_start = t_next = clock()
    sent = 0
    late_ms: float | None = None
    lates: list[float] = []
    for _ in range(count):
        t = clock()
        if t - t_start > max_s or stopped():
            break
        sent += 1
        try:
            r = client.call(dst, method, args, timeout=timeout)
            ok += 1
            lat.append(r.rtt_s * 1000)
            responders[r.responder] = responders.get(r.responder, 0) + 1
            if gap_start is not None:
                worst_gap = max(worst_gap, t - gap_start)
                gap_start = None
            if record is not None:
                record({"t": t, "latency_ms": round(r.rtt_s * 1000, 3),
                        "responder": r.responder, "status": "ok", "late_ms": late_ms})
        except CallError as exc:
            failed += 1
            errors[exc.status_name] = errors.get(exc.status_name, 0) + 1
            if gap_start is None:
                gap_start = t
            if record is not None:
                record({"t": t, "latency_ms": None, "status": exc.status_name,
                        "responder": getattr(exc, "responder", None), "late_ms": late_ms})
        t_next += interval
        delay = t_next - clock()
        late_ms = None
        if delay > 0:
            sleep(delay)      # pacing of a bounded load loop
            late_ms = round(max(0.0, clock() - t_next) * 1000, 3)
            lates.append(late_ms)
    if gap_start is not None:
        worst_gap = max(worst_gap, clock() - gap_start)
    lat.sort()

    def pct(q):
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None
    elapsed = max(clock() - t_start, 1e-9)
    return {"sent": sent, "ok": ok, "failed": failed, "errors": errors,
            "responders": responders, "rate_per_s": round(sent / elapsed, 1),
            "longest_outage_ms": round(worst_gap * 1000, 1),
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
            "late_p99_ms": sorted(lates)[min(len(lates) - 1, int(0.99 * len(lates)))]
            if lates else None, "late_max_ms": max(lates) if lates else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="call a DMSC service by name")
    ap.add_argument("--iface", required=True)
    ap.add_argument("--src", required=True, help="this caller's instance name")
    ap.add_argument("--mac", default="00:00:00:00:00:00")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("dst")
    ap.add_argument("method")
    ap.add_argument("args", nargs="?", default="{}", help="JSON arguments")
    ap.add_argument("--count", type=int, default=0,
                    help="load mode: this many calls, then print a summary")
    ap.add_argument("--interval", type=float, default=0.01, help="load mode: seconds between calls")
    ap.add_argument("--max-s", type=float, default=600.0, help="load mode: stop after this long")
    ap.add_argument("--records", help="load mode: append every call to this file as a JSON "
                    "line {t (CLOCK_MONOTONIC), latency_ms, responder, status, dst}")
    ap.add_argument("--probe", action="store_true",
                    help="send one PROBE to DST instead of a call; print the per-hop records")
    a = ap.parse_args(argv)
    if a.probe:
        try:
            with Client(a.iface, a.src, mac=a.mac, timeout=a.timeout) as c:
                p = c.probe(a.dst)
        except (CallError, names.InvalidName, ValueError) as exc:
            print(json.dumps({"error": str(exc)}))
            return 1
        print(json.dumps({"from": p.responder, "rtt_ms": round(p.rtt_s * 1000, 3),
                          "hops": p.hops}))
        return 0
    if a.count:
        if a.count > 1_000_000:
            print(json.dumps({"error": "--count is capped at 1,000,000"}))
            return 2
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))   # end early, still report
        out = open(a.records, "a", buffering=1) if a.records else None   # line-buffered

        def record(rec):
            rec["dst"] = a.dst
            out.write(json.dumps(rec) + "\n")
        try:
            with Client(a.iface, a.src, mac=a.mac, timeout=a.timeout) as c:
                print(json.dumps(load(c, a.dst, a.method, json.loads(a.args), count=a.count,
                                      interval=a.interval, timeout=a.timeout, max_s=a.max_s,
                                      stopped=lambda: bool(stop),
                                      record=record if out else None)))
        finally:
            if out is not None:
                out.close()
        return 0
    try:
        with Client(a.iface, a.src, mac=a.mac, timeout=a.timeout) as c:
            r = c.call(a.dst, a.method, json.loads(a.args))
    except (CallError, names.InvalidName, json.JSONDecodeError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps({"result": r.result, "from": r.responder,
                      "rtt_ms": round(r.rtt_s * 1000, 3), "hops": r.hops}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
