#!/usr/bin/env python3
"""SPF + RIB->FIB diff on a synthetic 1,000-router LSDB, and FIB programming
rate over P4Runtime, batched against one update per Write.

* SPF: a random connected 4-regular graph of 1,000 routers, a third of them
  SGs announcing two prefixes each; one router's view. Each round changes one
  link cost (a new LSA), then times spf.rib() + turning the RIB into FIB
  routes + the FIB diff against the previous round's routes (entries built
  from the real P4Info). Median of the rounds.
* FIB rate (needs root and simple_switch_grpc, else skipped with the reason):
  one BMv2, the DMSC pipeline, N one-next-hop FIB entries inserted in batched
  Writes, then N more with one update per Write, same process, same switch.

Last line: ``spf_1000_ms=<median> fib_writes_per_s=<batched>``.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402

import networkx as nx                                          # noqa: E402

from controller.switch import p4names as N                            # noqa: E402
from controller.routing import spf                                     # noqa: E402
from controller.switch.tables import Fib  # noqa: E402
from controller.routing.route import Route  # noqa: E402
from topologies.topo import NextHop  # noqa: E402
from controller.routing.lsdb import Lsdb                               # noqa: E402
from controller.switch.artifacts import BMV2_JSON, P4INFO             # noqa: E402
from controller.switch.p4rt import INSERT, SwitchConnection          # noqa: E402
from controller.proto.routing_pb2 import Adjacency, Lsa, PrefixEntry  # noqa: E402
from traffic.wire import names                                      # noqa: E402



def synthetic_lsdb(n: int, seed: int) -> tuple[Lsdb, nx.Graph]:
    g = nx.random_regular_graph(4, n, seed=seed)
    while not nx.is_connected(g):
        seed += 1
        g = nx.random_regular_graph(4, n, seed=seed)
    rng = random.Random(seed)
    for u, v in g.edges:
        g.edges[u, v]["cost"] = rng.randint(1, 10)
    db = Lsdb()
    for u in g.nodes:
        ports = {v: i + 1 for i, v in enumerate(sorted(g.neighbors(u)))}
        db.install(Lsa(origin=f"r{u}", seq=1, lifetime_ms=3_600_000,
                       kind="sg" if u % 3 == 0 else "sr",
                       adjacencies=[Adjacency(neighbor=f"r{v}", cost=g.edges[u, v]["cost"],
                                              port=ports[v]) for v in g.neighbors(u)],
                       prefixes=[PrefixEntry(prefix=f"/svc{u}/{j}", port=9) for j in range(2)]
                       if u % 3 == 0 else []), 0)
    return db, g


def routes_of(rib: dict, macs: dict) -> dict:
    return {p: Route.via(NextHop(h.port, macs.get(h.neighbor, "02:00:00:00:00:01")) for h in e.hops)
            for p, e in rib.items()}


def bench_spf(n: int, rounds: int) -> float:
    db, g = synthetic_lsdb(n, seed=7)
    me = "r1"
    sw = SwitchConnection("offline", "127.0.0.1:1", 1)
    sw.load_p4info(str(P4INFO))                 # entries need only the P4Info
    fib = Fib(sw)
    macs = {f"r{v}": f"02:00:00:00:{v >> 8 & 255:02x}:{v & 255:02x}" for v in g.nodes}
    prev = {names.prefix_key(p): r for p, r in routes_of(spf.rib(db, me), macs).items()}
    rng = random.Random(1)
    times = []
    for i in range(rounds):
        u = rng.randrange(n)
        old = db.get(f"r{u}").lsa
        new = Lsa()
        new.CopyFrom(old)
        new.seq += 1
        new.adjacencies[0].cost = rng.randint(1, 10)
        db.install(new, 0)
        t0 = time.perf_counter()
        rib = spf.rib(db, me)
        desired = {names.prefix_key(p): r for p, r in routes_of(rib, macs).items()}
        ups = fib.diff(prev, desired)
        times.append((time.perf_counter() - t0) * 1000)
        prev = desired
        if i == 0:
            print(f"  {n} routers, {sum(1 for e in db.live() if e.lsa.prefixes) * 2} prefixes, "
                  f"RIB {len(rib)} entries; first round changed {len(ups)} FIB entries")
    return statistics.median(times)


def bench_fib_rate(n_batched: int, n_single: int) -> tuple[float, float] | str:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("simple_switch_grpc") is None:
        return "needs simple_switch_grpc"
    from topologies.emu.apps.bmv2_app import Bmv2Process
    from topologies.emu.veth import VethPairs
    with tempfile.TemporaryDirectory() as d, VethPairs(2, "fr") as veths, \
            Bmv2Process("fibrate", 1, {1: veths.switch_side(1), 2: veths.switch_side(2)},
                        log_dir=d, log_level=None) as proc:
        with SwitchConnection("fibrate", proc.grpc_addr, 1).connect() as sw:
            sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
            fib = Fib(sw)
            hop = Route.via([NextHop(2, "02:00:00:00:00:02")])
            ents = [fib.entry(*names.prefix_key(f"/b/{i}"), hop) for i in range(n_batched)]
            t0 = time.perf_counter()
            sw.write([(INSERT, e) for e in ents])
            batched = n_batched / (time.perf_counter() - t0)
            ents = [fib.entry(*names.prefix_key(f"/s/{i}"), hop) for i in range(n_single)]
            t0 = time.perf_counter()
            for e in ents:
                sw.write([(INSERT, e)])
            single = n_single / (time.perf_counter() - t0)
            assert len(sw.read_table(N.TABLE_FIB)) == n_batched + n_single
    return batched, single


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routers", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--batched", type=int, default=3000)   # + --single <= FIB size 4096
    ap.add_argument("--single", type=int, default=1000)
    args = ap.parse_args(argv)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    print("SPF + RIB->FIB diff:")
    spf_ms = bench_spf(args.routers, args.rounds)
    print(f"  median {spf_ms:.1f} ms over {args.rounds} rounds (target <= 20 ms)")
    print("FIB programming over P4Runtime (one BMv2):")
    rate = bench_fib_rate(args.batched, args.single)
    if isinstance(rate, str):
        print(f"  skipped: {rate}")
        batched = float("nan")
    else:
        batched, single = rate
        print(f"  batched: {batched:.0f} entries/s ({args.batched} entries); one per Write: "
              f"{single:.0f} entries/s ({args.single} entries); batched/single = "
              f"{batched / single:.1f}x (target batched >= 5,000/s)")
    print(f"spf_{args.routers}_ms={spf_ms:.2f} fib_writes_per_s={batched:.0f} " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
