"""An SG's probes (DMSC 4.2 step 5): delay, jitter, loss and bandwidth of the
paths to the service instances its pods use, for the SCSC.

Every ``interval_s`` the SG sends one probe to each target instance (the
instances of the replicated services in its RIB: the ones the SCSC can choose
between), out of
its CPU port and looked up like any frame (policy, then FIB). Each switch on
the way pushes a record (switch id, ports, ingress and egress timestamps); the
pod hosting the instance answers, echoing the records, to the SG's own name,
which every switch routes to the SG's agent. From the answers
(:class:`PathStats`, pure logic, clock passed in):

* delay: the round trip SG -> instance -> SG, as the agent times it (send to
  packet-in), the median of the last ``DELAY_SAMPLES``: it includes the pod's
  service time and two P4Runtime stream hops (10-35 ms of noise here). A probe
  still in flight counts with its age so far (:meth:`Prober.delay_ms`): an
  instance that has not answered in 150 ms has a delay of at least 150 ms,
  known before its answer arrives;
* jitter: RFC 3550's interarrival jitter, J += (|D| - J) / 16, where D is the
  difference between consecutive round trips;
* loss: the fraction of the last ``LOSS_WINDOW`` probes unanswered within
  ``timeout_s``;
* per-hop delay: each switch's residence time, egress_ts - ingress_ts of its
  record (one switch's clock: no synchronisation needed);
* bandwidth: every ``TRAIN_EVERY`` rounds a train of ``TRAIN_LEN`` probes of
  ``TRAIN_BYTES`` each leaves back to back; on each switch-to-switch link of
  the forward path the downstream switch's ingress timestamps give the train's
  dispersion, and (n - 1) x size / dispersion is that link's rate; the path's
  figure is the smallest (packet-train dispersion, as in pathrate/Pathload);
  the reported figure is the median of the last three trains.
  It does not see the last link, SG to pod (no switch timestamps after it),
  and a dispersion of 0 us (faster than BMv2 timestamps resolve) is "unknown".

Replies cannot be forged into the estimators: probe ids are random 32-bit numbers
(not guessable from the last one), and a reply counts only if it carries an
outstanding id and comes from the probed instance (its source name, text and key,
is the target: the SG's source-name check, RFC 3704's uRPF for names, keeps a pod
from speaking as another). Anything else is counted (``probe_reply_unknown``,
``probe_reply_forged``) and dropped; a forged reply does not use up the id, so the
genuine answer still counts.
"""
from __future__ import annotations

import collections
import logging
import secrets
import statistics
import struct
import time
from dataclasses import dataclass, field

from traffic.wire import codec, defs, names

log = logging.getLogger("dmsc.probes")

DELAY_SAMPLES = 3
LOSS_WINDOW = 10
TRAIN_EVERY = 10
TRAIN_LEN = 5
TRAIN_BYTES = 1000
TRAIN_SAMPLES = 3
REC = struct.Struct("!IHH6s6sII")


@dataclass
class Record:
    switch_id: int
    ingress_port: int
    egress_port: int
    ingress_ts: int          # microseconds, the switch's clock
    egress_ts: int
    enq_qdepth: int
    deq_timedelta: int


def records(raw: bytes) -> list[Record]:
    """Probe records (newest first on the wire) in path order, first hop first."""
    if len(raw) % defs.PROBE_REC_BYTES:
        raise ValueError(f"{len(raw)} bytes of probe records")
    out = []
    for i in range(0, len(raw), defs.PROBE_REC_BYTES):
        sid, ip, ep, its, ets, q, d = REC.unpack_from(raw, i)
        out.append(Record(sid, ip, ep, int.from_bytes(its, "big"), int.from_bytes(ets, "big"), q, d))
    return out[::-1]


def jitter_update(j: float, prev_rtt: float, rtt: float) -> float:
    """RFC 3550 section 6.4.1: J = J + (|D| - J) / 16."""
    return j + (abs(rtt - prev_rtt) - j) / 16


def train_bandwidth_mbps(trains: list[list[Record]], size_bytes: int) -> float | None:
    """The smallest link rate a train shows: for each position k > 0 in the
    path, the dispersion of the train's ingress timestamps at switch k (after
    the link from switch k-1). ``trains``: the records of each train probe, in
    path order. None when no link gave a measurable dispersion."""
    if len(trains) < 2:
        return None
    hops = min(len(t) for t in trains)
    rates = []
    for k in range(1, hops):
        if len({t[k].switch_id for t in trains}) != 1:
            return None                          # the train took different paths
        ts = sorted(t[k].ingress_ts for t in trains)
        spread = ts[-1] - ts[0]
        if spread > 0:
            rates.append((len(trains) - 1) * size_bytes * 8 / spread)   # bits/us = Mbit/s
    return min(rates) if rates else None


@dataclass
class PathStats:
    instance: str
    rtts: collections.deque = field(default_factory=lambda: collections.deque(maxlen=DELAY_SAMPLES))
    outcomes: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LOSS_WINDOW))
    jitter_ms: float = 0.0
    last_rtt: float | None = None
    path: list[int] = field(default_factory=list)
    hop_us: list[float] = field(default_factory=list)
    hop_qdepth: list[int] = field(default_factory=list)
    bandwidth_mbps: float | None = None      # the median of the last TRAIN_SAMPLES trains
    trains: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TRAIN_SAMPLES))
    samples: int = 0

    def answered(self, rtt_ms: float, recs: list[Record]) -> None:
        if self.last_rtt is not None:
            self.jitter_ms = jitter_update(self.jitter_ms, self.last_rtt, rtt_ms)
        self.last_rtt = rtt_ms
        self.rtts.append(rtt_ms)
        self.outcomes.append(True)
        self.samples += 1
        if recs:
            self.path = [r.switch_id for r in recs]
            self.hop_us = [float(r.egress_ts - r.ingress_ts) for r in recs]
            self.hop_qdepth = [r.enq_qdepth for r in recs]

    def lost(self) -> None:
        self.outcomes.append(False)
        self.samples += 1

    @property
    def delay_ms(self) -> float | None:
        return statistics.median(self.rtts) if self.rtts else None

    @property
    def loss(self) -> float:
        return 0.0 if not self.outcomes else 1 - sum(self.outcomes) / len(self.outcomes)


def _from_target(f: codec.Frame, target: str) -> bool:
    """Does the reply come from ``target``: source name text and key both?"""
    try:
        return f.src_name == target and f.src_key == names.name_key(target)
    except (ValueError, names.InvalidName):
        return False


class Prober:
    """The probing side of one SG agent: what to send, what came back."""

    def __init__(self, name: str, *, interval_s: float = 0.1, timeout_s: float = 0.3,
                 clock=time.monotonic):
        self.me = names.switch_name(name)
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.clock = clock
        self.stats: dict[str, PathStats] = {}
        self.outstanding: dict[int, tuple[str, float, int | None]] = {}   # id -> (target, sent, train)
        self.trains: dict[int, dict] = {}
        self._round = 0
        self.next_round = 0.0
        self.counters = collections.Counter()

    def _id(self) -> int:
        """A random id no outstanding probe has (0 is never used)."""
        while True:
            mid = secrets.randbits(32)
            if mid and mid not in self.outstanding:
                return mid

    def due(self, now: float, targets) -> list[bytes]:
        """Frames to send now (a round every interval), after counting the
        probes that timed out."""
        for mid, (target, sent, train) in list(self.outstanding.items()):
            if now - sent > self.timeout_s:
                del self.outstanding[mid]
                if train is None and target in self.stats:
                    self.stats[target].lost()
                    self.counters["probe_lost"] += 1
        if now < self.next_round:
            return []
        self.next_round = now + self.interval_s
        self._round += 1
        for gone in set(self.stats) - set(targets):
            del self.stats[gone]
        frames = []
        for target in sorted(targets):
            self.stats.setdefault(target, PathStats(target))
            mid = self._id()
            frames.append(codec.encode(defs.TYPE_PROBE, target, self.me, msg_id=mid))
            self.outstanding[mid] = (target, now, None)
            if self._round % TRAIN_EVERY == 0:
                tid = mid
                pad = [(codec.TLV_BODY, b"\x00" * TRAIN_BYTES)]
                self.trains[tid] = {"target": target, "recs": [], "at": now, "size": 0}
                for _ in range(TRAIN_LEN):
                    m = self._id()
                    frame = codec.encode(defs.TYPE_PROBE, target, self.me, pad, msg_id=m)
                    self.trains[tid]["size"] = len(frame)
                    frames.append(frame)
                    self.outstanding[m] = (target, now, tid)
        self.counters["probes_sent"] += len(frames)
        return frames

    def delay_ms(self, target: str, now: float) -> float | None:
        """The target's delay: the median of its recent round trips, or the age
        of its oldest unanswered (not yet lost) probe when that is larger."""
        st = self.stats.get(target)
        if st is None:
            return None
        ages = [now - sent for t, sent, train in self.outstanding.values()
                if t == target and train is None]
        waiting = max(ages) * 1000 if ages else 0.0
        return max(st.delay_ms or 0.0, waiting) if (st.rtts or ages) else None

    def on_reply(self, f: codec.Frame, now: float) -> bool:
        """A PROBE_REPLY punted to this agent; False if it was not ours (an
        unknown id, or not from the probed instance: counted, never measured)."""
        got = self.outstanding.get(f.msg_id)
        if got is None:
            self.counters["probe_reply_unknown"] += 1
            return False
        target, sent, train = got
        if not _from_target(f, target):
            self.counters["probe_reply_forged"] += 1
            log.warning("probe reply %08x claims to answer for %s but comes from %s: dropped",
                        f.msg_id, target, f.src_name)
            return False
        del self.outstanding[f.msg_id]
        try:
            recs = records(f.tlv(codec.TLV_PROBE_RECORDS, b""))
        except ValueError:
            self.counters["probe_reply_malformed"] += 1
            recs = []
        st = self.stats.get(target)
        if st is None:
            return True
        if train is None:
            st.answered((now - sent) * 1000, recs)
            self.counters["probe_answered"] += 1
        else:
            tr = self.trains.get(train)
            if tr is not None:
                tr["recs"].append(recs)
                if len(tr["recs"]) == TRAIN_LEN:
                    bw = train_bandwidth_mbps(tr["recs"], tr["size"])
                    if bw is not None:
                        st.trains.append(bw)
                        st.bandwidth_mbps = statistics.median(st.trains)
                    del self.trains[train]
        for tid, tr in list(self.trains.items()):
            if now - tr["at"] > 2 * self.timeout_s:
                del self.trains[tid]
        return True
