#!/usr/bin/env python3
"""The centralized baseline against the distributed control plane, same run.

On Figure 2 (BMv2 in Mininet, same P4 program, same pods), once with one
agent per switch (DMSC's distributed mode) and once with the central
controller (controller/central, docs/central.md), in the same run:

* cold start: control plane started -> every FIB (read over P4Runtime)
  equals SPF over the topology, the pods' prefixes accepted by operator
  override (routing alone is timed, as benchmarks/convergence.py does);
* one prefix -> every FIB holds it: an operator override on sg2 on a quiet
  network, timed by the control plane's own clock (when the last FIB write
  completed, CLOCK_MONOTONIC) and verified by reading every FIB back; median
  of trials;
* link failure -> traffic restored: a pod calls /B/4 over the link sg1-sr3,
  **open loop** at 200 calls/s (one every 5 ms on schedule whatever the answers
  do, traffic/loadgen.py), and the link is cut (a silent cut: carrier stays
  up, so the failure is found by missing hellos or discovery frames in both
  modes); the longest run of unanswered calls, by intended send time (calls the
  generator did not send count in it), is the outage; median of trials;
* CPU and memory of the control plane on the converged, idle network: every
  agent summed against the one controller (and per agent).

Both modes use the same hello/discovery and dead intervals. Last line:
``cold_ratio=... prefix_ratio=... reroute_ratio=... cpu_ratio=... rss_ratio=...
central_reroute_ms=... reroute_ms=... loop=open rate=200 fidelity=...``,
each central / distributed (above 1: the central mode is slower or costs
more). Run as root, under the emulation lock.
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
from openloop import through_event                                 # noqa: E402

from controller.agent.admin_client import AdminClient                         # noqa: E402
from controller.central.admin_client import CentralClient                    # noqa: E402
from controller.switch.artifacts import REPO_ROOT as ROOT              # noqa: E402
from dmsc.converge import (FibReader, NotConverged, expected_fibs,  # noqa: E402
                                       wait_converged)
from topologies.emu.net import DmscNet                                 # noqa: E402
from topologies.emu.child_processes import cpu_seconds, rss_mb    # noqa: E402
from topologies.expected import served_prefixes                        # noqa: E402
from topologies.topo import Topology                                   # noqa: E402

QUIET_S = 1.2       # > the hold-downs' maximum: each trial starts on a quiet network
POLL_S = 0.05       # read-back polling while an event converges (verification, not the clock)
MODES = ("distributed", "central")


def control_pids(net: DmscNet) -> list[int]:
    if net.mode == "central":
        return [net.central.pid]
    return [a.pid for a in net.agents.values()]


def usage(net: DmscNet, seconds: float = 5.0) -> dict:
    """Control-plane RSS and CPU (% of one core) summed over its processes,
    over ``seconds`` of a converged, idle network."""
    pids = control_pids(net)
    before, t0 = sum(cpu_seconds(p) for p in pids), time.monotonic()
    time.sleep(seconds)
    cpu = (sum(cpu_seconds(p) for p in pids) - before) / (time.monotonic() - t0) * 100
    return {"processes": len(pids), "rss_mb": sum(rss_mb(p) for p in pids), "cpu": cpu}


def fib_written_at(net: DmscNet) -> float:
    """When the control plane's last FIB write completed (CLOCK_MONOTONIC)."""
    if net.mode == "central":
        with net.central.client() as c:
            return c.state().fib_written_at
    last = 0.0
    for name in net.topo.switches():
        with net.admin(name) as c:
            last = max(last, c.state(counters_only=True).fib_written_at)
    return last


def cold_start(topo: Topology, run_dir: Path, mode: str, timeout: float):
    net = DmscNet(topo, run_dir, log_level=None)
    net.start()
    try:
        t0 = time.monotonic()
        if mode == "central":
            net.start_central()
        else:
            net.start_agents()
        net.override_pod_prefixes()
        with FibReader.for_net(net) as reader:
            wait_converged(reader, expected_fibs(topo), timeout=timeout, poll=POLL_S)
        return net, time.monotonic() - t0
    except BaseException:
        net.stop()
        raise


def accept(net: DmscNet, prefix: str) -> float:
    """Operator override of ``prefix`` behind pod2 on sg2; returns the
    CLOCK_MONOTONIC time just before the request left (channel already up)."""
    t = net.topo
    port, mac = t.port("sg2", "pod2"), t.mac("pod2", 0)
    if net.mode == "central":
        with CentralClient(net.central.admin_addr) as c:
            c.state()
            t0 = time.monotonic()
            c.accept_prefix("sg2", prefix, port, mac)
    else:
        with AdminClient(net.agents["sg2"].admin_addr) as c:
            c.state()
            t0 = time.monotonic()
            c.accept_prefix(prefix, port, mac)
    return t0


def prefix_trials(net: DmscNet, trials: int) -> list[float]:
    topo = net.topo
    out = []
    prefixes = dict(served_prefixes(topo))
    with FibReader.for_net(net) as reader:
        for i in range(trials):
            prefix = f"/bench/{i}"
            prefixes[prefix] = {"pod2"}
            time.sleep(QUIET_S)
            t0 = accept(net, prefix)
            try:
                wait_converged(reader, expected_fibs(topo, prefixes=prefixes), timeout=10,
                               poll=POLL_S)
            except NotConverged as exc:        # counted and shown, never averaged in
                print(f"  {net.mode}: {prefix} not in every FIB after 10 s: {exc}", flush=True)
                out.append(float("nan"))
                wait_converged(reader, expected_fibs(topo, prefixes=prefixes), timeout=60)
                continue
            out.append((fib_written_at(net) - t0) * 1000)
        for i in range(trials):
            net.withdraw_prefix("sg2", f"/bench/{i}")
        wait_converged(reader, expected_fibs(topo), timeout=30)
    return out


RATE = 200.0        # open loop: calls per second through the link that fails (one every 5 ms)
CALL_TIMEOUT = 0.05


def reroute_trials(net: DmscNet, trials: int) -> list[dict]:
    """Link failure under open-loop calls pod1 -> /B/4: each trial's outage
    and cut -> answered again, from the calls' intended send times."""
    topo = net.topo
    out = []
    core = topo.core_graph()
    core.remove_edge("sg1", "sr3")
    want_down, want_up = expected_fibs(topo, core), expected_fibs(topo)
    for pod in topo.pods():
        net.start_pod(pod, announce=False)
    # for as long as detection may take (3 dead intervals and a second, at least 2 s)
    duration = 0.5 + max(2.0, 3 * net.dead_ms / 1000 + 1.0)
    with FibReader.for_net(net) as reader:
        for _ in range(trials):
            def cut():
                net.failures.link_down("sg1", "sr3")
                wait_converged(reader, want_down, timeout=30, poll=POLL_S)
            r = through_event(net, "pod1", "/B/4", cut, src="/A/1", rate=RATE,
                              duration=duration, timeout=CALL_TIMEOUT)
            out.append(r)
            time.sleep(max(0.0, r["t0"] + 2.5 * net.dead_ms / 1000 - time.monotonic()))
            net.failures.link_up("sg1", "sr3")
            wait_converged(reader, want_up, timeout=30)
            time.sleep(QUIET_S)
    return out


def run_mode(topo: Topology, mode: str, trials: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"dmsc-central-{mode}-") as d:
        net, cold = cold_start(topo, Path(d), mode, timeout)
        try:
            use = usage(net)
            prefix = prefix_trials(net, trials)
            cuts = reroute_trials(net, max(3, trials // 2))
        finally:
            net.stop()
    outages = [c["outage_ms"] for c in cuts]
    back = [c["restored_ms"] for c in cuts if c["restored_ms"] is not None]
    after = {k: sum(c["calls"][k] for c in cuts) for k in ("scheduled", "ok", "not_sent")}
    ok = [p for p in prefix if p == p]
    r = {"cold_s": cold, "prefix_ms": statistics.median(ok) if ok else float("nan"),
         "prefix_failed": len(prefix) - len(ok), "prefix_all": prefix,
         "reroute_ms": statistics.median(outages), "reroute_all": outages,
         "restored_ms": statistics.median(back) if back else float("nan"),
         "restored_never": len(cuts) - len(back), "calls_after_cut": after, **use,
         "hello_ms": net.hello_ms, "dead_ms": net.dead_ms}
    print(f"{mode:11s} cold start {cold:5.2f} s; one prefix -> all FIBs median "
          f"{r['prefix_ms']:.0f} ms ({min(ok, default=0):.0f}-{max(ok, default=0):.0f}"
          f"{f', {len(prefix) - len(ok)} not within 10 s' if len(ok) < len(prefix) else ''}); "
          f"link failure -> "
          f"traffic restored (open loop, {RATE:g} calls/s) median outage {r['reroute_ms']:.0f} "
          f"ms {sorted(outages)}, cut -> answered again {r['restored_ms']:.0f} ms"
          f"{f' ({len(cuts) - len(back)} never)' if len(back) < len(cuts) else ''}, "
          f"{after['ok']} of {after['scheduled']} calls scheduled from the cuts on answered "
          f"({after['not_sent']} not sent); control plane "
          f"{use['processes']} process(es), RSS {use['rss_mb']:.0f} MB, CPU {use['cpu']:.1f}% "
          f"of a core idle (hello {net.hello_ms} ms, dead {net.dead_ms} ms)", flush=True)
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=7)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    if os.geteuid() != 0:
        print("central benchmark: needs root", file=sys.stderr)
        return 2
    topo = Topology.load(ROOT / "topologies" / "fig2.yaml")
    res = {m: run_mode(topo, m, args.trials, args.timeout) for m in MODES}
    d, c = res["distributed"], res["central"]
    ratios = {"cold_ratio": c["cold_s"] / d["cold_s"],
              "prefix_ratio": c["prefix_ms"] / d["prefix_ms"],
              "reroute_ratio": c["reroute_ms"] / d["reroute_ms"],
              "cpu_ratio": c["cpu"] / d["cpu"] if d["cpu"] else float("nan"),
              "rss_ratio": c["rss_mb"] / d["rss_mb"]}
    if args.json:
        Path(args.json).write_text(json.dumps({"modes": res, "ratios": ratios}, indent=2))
    print(f"summary: link failure -> traffic restored (open loop, {RATE:g} calls/s) "
          f"{c['reroute_ms']:.0f} ms central / {d['reroute_ms']:.0f} ms distributed; one "
          f"prefix -> all FIBs {c['prefix_ms']:.0f} / {d['prefix_ms']:.0f} ms; RSS "
          f"{c['rss_mb']:.0f} / {d['rss_mb']:.0f} MB", flush=True)
    print(" ".join(f"{k}={v:.2f}" for k, v in ratios.items())
          + f" central_reroute_ms={c['reroute_ms']:.0f} reroute_ms={d['reroute_ms']:.0f}"
          f" loop=open rate={RATE:g} " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
