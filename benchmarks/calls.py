#!/usr/bin/env python3
"""Calls by name across Figure 2, and a new service's announcement to reachable.

In one run, on BMv2 in Mininet with the SPA, the agents and announcing pods:
* calls A/1 -> B/4 across Figure 2 (three switches each way), **open loop** at
  ``--rate`` calls/s (200 by default; traffic/loadgen.py: ``--calls`` calls on a
  constant schedule whatever the answers do, each call's latency from its
  intended send time, every scheduled call counted: answered, failed,
  not_sent): latency p50/p99 (``p50_ms``, ``p99_ms``) and ``answered_pct``;
* then the **capacity, closed loop**: the same number of calls, one in flight,
  the next sent when the last returns (traffic.rmi_client), as fast as the
  caller goes: ``calls_per_s`` is this service rate (it is not a latency
  figure: a closed loop hides stalls). ``--loop closed`` makes the closed loop
  the latency figure too (the old measurement);
* the same two pods on a one-switch topology, same calls: the baseline. The
  ratio of the p50 latencies (open loop, same rate) is ``path_cost_ratio``
  (what the two extra hops and the longer path cost);
* a new service's announcement to reachable from every pod, SPA round trip and
  signature check included: the operator authorizes /N<i> for pod1's key, pod1
  announces it (traffic.send_announcement), and the time runs from the frame's send to
  the last FIB write of the agents (their CLOCK_MONOTONIC, the same clock),
  verified by reading every FIB back. Median of trials.

Last line: ``calls_per_s=<closed-loop capacity> p50_ms=... p99_ms=... answered_pct=...
loop=open rate=<calls/s> path_cost_ratio=... announce_to_reachable_ms=... fidelity=...``.
Run as root.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402
from openloop import Load, describe                                # noqa: E402

from controller.switch.artifacts import REPO_ROOT as ROOT             # noqa: E402
from dmsc.converge import (FibReader, bring_up, expected_fibs,  # noqa: E402
                                       wait_converged)
from topologies.emu.net import DmscNet                                 # noqa: E402
from topologies.expected import served_prefixes                        # noqa: E402
from topologies.topo import Topology                                   # noqa: E402

ONE_SWITCH = {"name": "one-switch",
              "nodes": {"pod1": {"kind": "pod", "instances": ["/A/1"]},
                        "pod4": {"kind": "pod", "instances": ["/B/4"]},
                        "sg1": {"kind": "sg", "id": 1}},
              "links": [["pod1", "sg1:1"], ["pod4", "sg1:2"]]}


def call_load(net: DmscNet, count: int) -> dict:
    """Closed loop: one call in flight, as fast as the caller goes (the capacity)."""
    t = net.topo
    res = net.run_in("pod1", ["-m", "traffic.rmi_client", "--iface", t.intf_name("pod1", 0),
                              "--src", "/A/1", "--mac", t.mac("pod1", 0), "--timeout", "0.5",
                              "--count", str(count), "--interval", "0", "--max-s", "120",
                              "/B/4", "echo"], timeout=180)
    return json.loads(res.stdout)


def open_load(net: DmscNet, count: int, rate: float) -> dict:
    """Open loop: ``count`` calls at ``rate`` calls/s, on schedule."""
    with Load(net, "pod1", "/B/4", src="/A/1", rate=rate, duration=count / rate,
              timeout=0.5) as load:
        return load.finish()


def announce_trials(net: DmscNet, trials: int) -> list[float]:
    t = net.topo
    out = []
    with net.spa() as spa:
        for i in range(trials):
            prefix = f"/N{i}"
            spa.authorize(prefix, 1, ["pod1"])
            time.sleep(1.2)          # a quiet network: SPF back-off back to immediate
            before = {}
            for s in t.switches():
                with net.admin(s) as c:
                    before[s] = c.state(counters_only=True).fib_version
            res = net.run_in("pod1", ["-m", "traffic.send_announcement", "--iface", t.intf_name("pod1", 0),
                                      "--mac", t.mac("pod1", 0), "--key", str(net.key_files["pod1"]),
                                      "--prefix", prefix], timeout=30)
            got = json.loads(res.stdout)
            if got.get("answer") != "ack":
                raise RuntimeError(f"announcement of {prefix} not accepted: {got}")
            want = expected_fibs(t, prefixes={**served_prefixes(t), prefix: {"pod1"}})
            with FibReader.for_net(net) as r:
                wait_converged(r, want, timeout=10, poll=0.05)
            last = 0.0
            for s in t.switches():
                with net.admin(s) as c:
                    st = c.state()
                if st.fib_version == before[s]:
                    raise RuntimeError(f"{s} wrote no FIB for {prefix}")
                last = max(last, st.fib_written_at)
            out.append((last - got["sent_at"]) * 1000)
            with net.admin("sg1") as c:
                c.withdraw_prefix(prefix)
            spa.revoke(prefix)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=200.0,
                    help="open loop: calls per second (the --calls calls at this rate)")
    ap.add_argument("--loop", choices=("open", "closed"), default="open",
                    help="the latency figures' loop (closed: one call in flight, the old "
                    "measurement); the capacity is always the closed loop's")
    ap.add_argument("--trials", type=int, default=7)
    a = ap.parse_args(argv)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    if os.geteuid() != 0:
        print("calls benchmark: needs root", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory(prefix="dmsc-calls-") as d:
        for name, topo in (("fig2", Topology.load(ROOT / "topologies" / "fig2.yaml")),
                           ("one-switch", Topology.from_dict(ONE_SWITCH))):
            net = bring_up(DmscNet(topo, Path(d) / name))
            try:
                if a.loop == "open":
                    r = open_load(net, a.calls, a.rate)
                    print(f"{name:10s} A/1 -> B/4: {describe(r)}", flush=True)
                cap = call_load(net, a.calls)
                if a.loop == "closed":
                    r = dict(cap)
                    print(f"{name:10s} A/1 -> B/4 (closed loop, latency): {r['ok']}/{r['sent']} "
                          f"ok, p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, p99 {r['p99_ms']} "
                          f"ms, errors {r['errors']}", flush=True)
                r["capacity"] = cap
                print(f"{name:10s} A/1 -> B/4 capacity (closed loop, one call in flight): "
                      f"{cap['ok']}/{cap['sent']} ok, {cap['rate_per_s']:.0f} calls/s, p50 "
                      f"{cap['p50_ms']} ms, p99 {cap['p99_ms']} ms, errors {cap['errors']}",
                      flush=True)
                results[name] = r
                if name == "fig2":
                    ann = announce_trials(net, a.trials)
                    results["announce"] = ann
                    print(f"new service announced by pod1 -> in every FIB (SPA included): median "
                          f"{statistics.median(ann):.0f} ms (min {min(ann):.0f}, max "
                          f"{max(ann):.0f}; target <= 100 ms)", flush=True)
            finally:
                net.stop()
    f, o = results["fig2"], results["one-switch"]
    if a.loop == "open":
        answered = f"answered_pct={f['answered_pct']} loop=open rate={a.rate:g}"
        how = f"open loop, {a.rate:g} calls/s"
    else:
        answered = (f"answered_pct={round(100.0 * f['ok'] / f['sent'], 2) if f['sent'] else None}"
                    f" loop=closed")
        how = "closed loop"
    print(f"summary: calls A/1 -> B/4 across Figure 2, {how}: p50 {f['p50_ms']} ms, p99 "
          f"{f['p99_ms']} ms; capacity (closed loop) {f['capacity']['rate_per_s']:.0f} calls/s",
          flush=True)
    print(f"calls_per_s={f['capacity']['rate_per_s']:.0f} p50_ms={f['p50_ms']} "
          f"p99_ms={f['p99_ms']} {answered} "
          f"path_cost_ratio={f['p50_ms'] / o['p50_ms']:.2f} "
          f"announce_to_reachable_ms={statistics.median(results['announce']):.0f} "
          + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
