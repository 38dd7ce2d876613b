"""The SCSC process: telemetry in, policies out (DMSC type-4 signaling).

    python -m controller.scsc --addr 127.0.0.1:PORT --key-file domain.key \\
        --agent sg1=127.0.0.1:P1 --agent sr1=127.0.0.1:P2 ...

It learns the topology from the routing protocol, not from a topology file:
every ``lsdb_s`` it reads the LSDB of the first agent that answers (any
agent's LSDB is the whole domain's) and builds SPF's graph from it
(controller.routing.spf.graph). The agent addresses are their policy
channels (controller/policy_channel.py: LSDB in, policies out, apart from the
operator's admin service), its management plane, as an SDN controller knows
its devices. Every ``eval_s`` it evaluates
(controller/scsc/schedule.py) and pushes each switch its whole policy set,
signed, with a lifetime of ``lifetime_s``; a set that did not change is
pushed again every ``push_s``, so policies expire within ``lifetime_s`` of
the SCSC falling silent and forwarding falls back to SPF.

Telemetry that is malformed, from an unknown sender, forged (bad HMAC with the
telemetry key: controller/keys.py), replayed (seq not above the last), too far
ahead (a seq beyond the clock: it would lock the sender out) or stale (sent more
than ``stale_s`` ago) is refused, counted by reason and logged; the SCSC keeps
running. Policy sets are signed with the policy key.
"""
from __future__ import annotations

import argparse
import collections
import logging
import math
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from controller.proto import scsc_pb2 as pb
from controller.proto import scsc_pb2_grpc as pb_grpc
from controller.routing import spf
from controller.routing.lsdb import Lsdb
from controller import keys
from controller.keys import sign, verify
from controller.policy_channel import PolicyClient, PolicyError
from controller.scsc.schedule import Scheduler, Thresholds, hop_delays
from traffic.wire import names
from controller.rpc import EXCLUSIVE_PORT, bind, check_listen_addr

log = logging.getLogger("dmsc.scsc")

STALE_S = 5.0
EXPIRY_STEP_S = 0.5     # each hop down a steered path keeps its policies this much longer


class Scsc(pb_grpc.ScscServicer):
    def __init__(self, key: bytes, agents: dict[str, str], *, name: str = "scsc",
                 thresholds: Thresholds | None = None, restore_s: float = 3.0,
                 onset_s: float = 0.2,
                 eval_s: float = 0.1, push_s: float = 0.5, lifetime_s: float = 1.5,
                 lsdb_s: float = 1.0, clock=time.time):
        # ``key`` is the domain secret: telemetry and policy sets have keys of their own
        self.telemetry_key = keys.derive(key, keys.TELEMETRY)
        self.policy_key = keys.derive(key, keys.POLICY)
        self.agents, self.name = dict(agents), name
        self.scheduler = Scheduler(thresholds, restore_s=restore_s, onset_s=onset_s)
        self.eval_s, self.push_s, self.lifetime_s, self.lsdb_s = eval_s, push_s, lifetime_s, lsdb_s
        self.clock = clock
        self.lock = threading.Lock()
        self.telemetry: dict[tuple[str, str], tuple[pb.PathReport, float]] = {}
        self.fib_packets: dict[str, tuple[dict, float]] = {}    # switch -> (counters, when)
        self.last_seq: dict[str, int] = {}
        self.counters: collections.Counter = collections.Counter()
        self.graph = None
        self.id_to_name: dict[int, str] = {}
        self.version = int(clock() * 1000)        # above any earlier run's: agents take it
        self.pushed: dict[str, tuple] = {}        # switch -> (entries, when)
        self.last_hops: dict[str, int] = {}       # switch -> its position on a steered path
        self.stop = threading.Event()

    # -- telemetry in -----------------------------------------------------------
    def Report(self, request, context):
        why = self._refusal(request)
        if why:
            self.counters[f"telemetry_refused_{why}"] += 1
            log.warning("telemetry from %r refused: %s", request.sg, why)
            return pb.Ack(ok=False, error=why)
        now = self.clock()
        with self.lock:
            self.last_seq[request.sg] = request.seq
            for p in request.paths:
                self.telemetry[(request.sg, p.instance)] = (p, now)
            if request.fib_packets:
                self.fib_packets[request.sg] = (dict(request.fib_packets), now)
            self.counters["telemetry_accepted"] += 1
        return pb.Ack(ok=True)

    def _refusal(self, t) -> str | None:
        if not verify(t, self.telemetry_key):
            return "bad_auth"
        with self.lock:
            known = self.graph is not None and t.sg in self.graph
            last = self.last_seq.get(t.sg, -1)
        if not known:
            return "unknown_sender"
        if t.seq <= last:
            return "replay"
        if keys.too_far_ahead(t.seq, self.clock()):
            return "seq_ahead"          # would lock the sender out (controller/keys.py)
        if not math.isfinite(t.sent_at) or abs(self.clock() - t.sent_at) > STALE_S:
            return "stale"
        for p in t.paths:
            try:
                names.components(p.instance)
            except names.InvalidName:
                return "malformed"
            vals = (p.delay_ms, p.jitter_ms, p.loss, p.bandwidth_mbps)
            if not all(math.isfinite(v) and v >= 0 for v in vals) or p.loss > 1 \
                    or len(p.hop_us) != len(p.path) \
                    or (p.hop_qdepth and len(p.hop_qdepth) != len(p.path)):
                return "malformed"
        return None

    # -- the topology ------------------------------------------------------------
    def refresh_topology(self) -> bool:
        for name, addr in self.agents.items():
            try:
                with PolicyClient(addr, timeout=1.0) as c:
                    lsas = c.lsdb()
            except PolicyError:
                continue
            db = Lsdb()
            now = time.monotonic()
            ids = {}
            for lsa in lsas:
                db.install(lsa, now)
                ids[lsa.origin_id] = lsa.origin
            g = spf.graph(db)
            with self.lock:
                self.graph, self.id_to_name = g, ids
            self.counters["lsdb_reads"] += 1
            return True
        self.counters["lsdb_unreachable"] += 1
        return False

    # -- policies out ------------------------------------------------------------
    def step(self) -> None:
        """One evaluation and the pushes it needs."""
        now = self.clock()
        with self.lock:
            g = self.graph
            tel = dict(self.telemetry)
        if g is None:
            return
        entries = self.scheduler.evaluate(g, tel, now, hop_delays(tel, self.id_to_name))
        by_switch: dict[str, list] = {}
        for e in entries:
            by_switch.setdefault(e.switch, []).append(e)
        # Removals first, ingress first (break before make, upstream first);
        # then additions, last hop first (make before break): a switch never
        # sends steered traffic to one that does not steer it (no loop).
        hops = self.scheduler.hop_index()
        shrinking = sorted((sw for sw, (old, _t) in self.pushed.items()
                            if set(old) - set(by_switch.get(sw, []))),
                           key=lambda sw: (self.last_hops.get(sw, 99), sw))
        order = [*shrinking, *self.scheduler.push_order()]
        order += sorted((set(by_switch) | set(self.pushed)) - set(order))
        for switch in order:
            if switch not in by_switch and switch not in self.pushed:
                continue
            want = tuple(sorted(by_switch.get(switch, []), key=repr))
            last = self.pushed.get(switch)
            if last is not None and last[0] == want and now - last[1] < self.push_s:
                continue
            if not want and last is not None and not last[0] and now - last[1] > self.lifetime_s:
                del self.pushed[switch]                 # told it is empty; long expired
                continue
            self._push(switch, want, now, hops.get(switch, 0))
        self.last_hops = hops

    def _push(self, switch: str, entries, now: float, hop: int = 0) -> None:
        addr = self.agents.get(switch)
        if addr is None:
            self.counters["push_no_address"] += 1
            return
        self.version += 1
        # the further down its path a switch is, the longer its policies
        # live: when the SCSC falls silent they expire ingress first
        ps = pb.PolicySet(switch=switch, version=self.version,
                          lifetime_s=self.lifetime_s + hop * EXPIRY_STEP_S, sent_at=now,
                          scsc=self.name)
        for e in entries:
            ps.entries.add(dst=e.dst, src=list(e.src), next=e.next, instance=e.instance)
        sign(ps, self.policy_key)
        try:
            with PolicyClient(addr, timeout=1.0) as c:
                ack = c.set_policies(ps)
        except PolicyError as exc:
            self.counters["push_failed"] += 1
            log.warning("policy push to %s failed: %s", switch, exc)
            return
        if not ack.ok:
            self.counters["push_refused"] += 1
            log.warning("policy push to %s refused: %s", switch, ack.error)
            return
        if self.pushed.get(switch, ((), 0))[0] != entries:
            log.info("policies on %s: %s", switch,
                     "; ".join(f"{e.dst} from {','.join(e.src)} -> {e.next}" for e in entries)
                     or "none")
        self.pushed[switch] = (entries, now)
        self.counters["pushes"] += 1

    def run(self) -> None:
        next_lsdb = 0.0
        while not self.stop.is_set():
            t = time.monotonic()
            if t >= next_lsdb:
                self.refresh_topology()
                next_lsdb = t + self.lsdb_s
            try:
                self.step()
            except Exception:          # a scheduling bug must not end the SCSC: log, count
                self.counters["step_errors"] += 1
                log.exception("scsc: evaluation failed")
            self.stop.wait(self.eval_s)

    # -- inspection ----------------------------------------------------------------
    def View(self, request, context):
        now = self.clock()
        v = pb.ScscView()
        with self.lock:
            if self.graph is not None:
                v.routers.extend(sorted(self.graph.nodes))
            for (sg, _i), (m, at) in sorted(self.telemetry.items()):
                why = self.scheduler.t.violation(m)
                v.telemetry.add(sg=sg, path=m, age_s=now - at, violates=bool(why),
                                violation=why or "")
            for d in self.scheduler.decisions.values():
                v.decisions.add(sg=d.sg, service=d.service, default_instance=",".join(d.defaults),
                                chosen=d.chosen, path=d.path, why=d.why, since=d.since)
            for sw, (counts, at) in sorted(self.fib_packets.items()):
                x = v.switches.add(switch=sw, age_s=now - at)
                x.fib_packets.update(counts)
            for k, c in self.counters.items():
                v.counters[k] = c
        t = self.scheduler.t
        v.thresholds.update({"bandwidth_mbps": t.bandwidth_mbps, "delay_ms": t.delay_ms,
                             "jitter_ms": t.jitter_ms, "loss": t.loss,
                             "restore_s": self.scheduler.restore_s})
        return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="DMSC SCSC (scheduling center)")
    ap.add_argument("--addr", required=True,
                    help="unix:/private/dir/scsc.sock (root only) or 127.0.0.1:<port>")
    ap.add_argument("--key-file", required=True, help="the domain key (signs type-4 messages)")
    ap.add_argument("--agent", action="append", default=[], metavar="NAME=127.0.0.1:PORT",
                    help="an agent's policy channel (its --policy-addr; repeatable): LSDB "
                         "in, policies out (controller/policy_channel.py)")
    ap.add_argument("--delay-ms", type=float, default=100.0)
    ap.add_argument("--jitter-ms", type=float, default=50.0)
    ap.add_argument("--bandwidth-mbps", type=float, default=0.0, help="0: not a condition")
    ap.add_argument("--loss", type=float, default=0.5)
    ap.add_argument("--restore-s", type=float, default=3.0,
                    help="hysteresis: defaults healthy this long before traffic returns")
    ap.add_argument("--onset-s", type=float, default=0.2,
                    help="hysteresis: a violation counts once it has lasted this long")
    ap.add_argument("--lifetime-s", type=float, default=1.5)
    ap.add_argument("--log-file")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    logging.basicConfig(filename=a.log_file, level=a.log_level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        warning = check_listen_addr(a.addr)
    except ValueError as exc:
        print(f"scsc: --addr {exc}", file=sys.stderr)
        return 2
    if warning:
        log.warning("%s", warning)
    try:
        agents = dict(x.split("=", 1) for x in a.agent)
        key = Path(a.key_file).read_bytes()
    except (ValueError, OSError) as exc:
        print(f"scsc: {exc}", file=sys.stderr)
        return 2
    scsc = Scsc(key, agents, thresholds=Thresholds(a.bandwidth_mbps, a.delay_ms, a.jitter_ms,
                                                   a.loss),
                restore_s=a.restore_s, onset_s=a.onset_s, lifetime_s=a.lifetime_s)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=EXCLUSIVE_PORT)
    pb_grpc.add_ScscServicer_to_server(scsc, server)
    if not bind(server, a.addr):
        print(f"scsc: cannot listen on {a.addr}", file=sys.stderr)
        return 2
    server.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: scsc.stop.set())
    log.info("SCSC on %s, %d agents, thresholds %s", a.addr, len(agents), scsc.scheduler.t)
    try:
        scsc.run()
    finally:
        server.stop(grace=None)
        log.info("SCSC stopping; counters %s", dict(scsc.counters))
    return 0
