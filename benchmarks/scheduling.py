#!/usr/bin/env python3
"""The SCSC steering around a degraded instance, on Figure 2 (BMv2, Mininet).

A/1 calls the service /B (its nearest instance /B/1 is in its own pod)
throughout, **open loop** at ``--rate`` calls/s (100 by default;
traffic/loadgen.py: calls on a constant schedule whatever the answers do, many
in flight, each call's latency from its intended send time, every call
recorded). Each repetition raises /B/1's service time (the pod answers every
request and probe ``--degrade-ms`` later) and times, on the one
CLOCK_MONOTONIC of the agents, the load generator and this process:
* shift: degradation onset -> the calls answered by another instance, from
  the calls' records: the intended send time of the first call from which on
  (until the degradation ends) no call was answered by /B/1, minus the onset
  (``shift_ms``). Beside it the control plane's own time: onset -> the
  steering policy written on sg1, the ingress SG (the agent's record of its
  last policy write; ``policy_ms``);
* restore: degradation removed -> the calls back on /B/1 (the same, from the
  records; hysteresis included) and sg1's policy removed;
and counts the calls that failed (none should: the degraded instance is slow,
not gone): every call scheduled from the load's start to its stop, not_sent
included; and the calls slowed meanwhile (latency over the degradation). Then
the probe overhead: probe frames per second per probing SG (sent; replies
come back as many again).

Last line: ``shift_ms=<median> failed_calls=<sum> probe_frames_per_s=<per SG>
probe_ms=<interval> policy_ms=<median> scheduled_calls=... loop=open rate=...
fidelity=...``, beside Envoy's outlier-detection defaults as context: a 10 s
evaluation interval and 5 consecutive errors before an ejection. Run as root.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402
from openloop import Load                                # noqa: E402

from controller.switch.artifacts import REPO_ROOT as ROOT                      # noqa: E402
from dmsc.converge import bring_up                            # noqa: E402
from topologies.emu.net import DmscNet                                         # noqa: E402
from topologies.topo import Topology                                           # noqa: E402
from traffic.loadgen import settled_at, tally                                  # noqa: E402

DEGRADED = "/B/1"           # A/1's nearest /B instance, in its own pod


def policy_state(net, switch="sg1"):
    rep = net.policies(switch)
    return [p for p in rep.policies if p.dst == "/B" and p.src in ("/A/1", "/B/1")], rep.changed_at


def wait_for(fn, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.01)
    return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probe-ms", type=int, default=100)
    ap.add_argument("--degrade-ms", type=float, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rate", type=float, default=100.0, help="open loop: calls per second")
    a = ap.parse_args(argv)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    if os.geteuid() != 0:
        print("scheduling benchmark: needs root", file=sys.stderr)
        return 2
    topo = Topology.load(ROOT / "topologies" / "fig2.yaml")
    shifts, policies, restores, policy_restores = [], [], [], []
    reps = []             # each repetition: onset, end of the degradation, end, policy time
    with tempfile.TemporaryDirectory(prefix="dmsc-sched-") as d:
        net = bring_up(DmscNet(topo, Path(d), probe_ms=a.probe_ms))
        load = None
        try:
            # bounded: at most this long at --rate (the run stops it sooner)
            max_s = 20 * a.reps + 30
            # a time-out well above the degraded service time: slow is not failed
            load = Load(net, "pod1", "/B", src="/A/1", rate=a.rate, duration=max_s,
                        timeout=2.0, records=Path(d) / "calls.jsonl")
            t_first = load.wait_answering(30)
            time.sleep(max(0.0, t_first + 3.0 - time.monotonic()))   # a steady state first
            with net.admin("sg1") as c:
                c0 = c.state(counters_only=True).counters
            t_probe0 = time.monotonic()
            for rep in range(a.reps):
                t0 = time.monotonic()
                net.set_service_time("pod1", a.degrade_ms)
                if not wait_for(lambda: policy_state(net)[0], 10):
                    print(f"rep {rep}: no policy on sg1 within 10 s", flush=True)
                    net.set_service_time("pod1", 0)
                    reps.append({"t0": t0, "t1": time.monotonic(), "t2": None, "policy": None})
                    continue
                policy = (policy_state(net)[1] - t0) * 1000
                policies.append(policy)
                time.sleep(max(0.0, t0 + 2.0 - time.monotonic()))   # degraded 2 s in all
                t1 = time.monotonic()
                net.set_service_time("pod1", 0)
                if wait_for(lambda: not policy_state(net)[0], 20):
                    policy_restores.append((policy_state(net)[1] - t1) * 1000)
                time.sleep(1.0)                     # the calls back on /B/1 for a while
                reps.append({"t0": t0, "t1": t1, "t2": time.monotonic(), "policy": policy})
            with net.admin("sg1") as c:
                c1 = c.state(counters_only=True).counters
            probe_s = time.monotonic() - t_probe0
            t_stop = time.monotonic()               # the calls counted: scheduled before it
            time.sleep(0.2)                         # ... and all of them sent
            summary = load.stop()
            records = load.records()
        finally:
            if load is not None:
                load.close()
            net.stop()
    # every call scheduled from the start of the load to t_stop (the rest of the
    # bounded schedule, never due in the run, is not a call of the run)
    measured = [r for r in records if r["t"] < t_stop]
    counts = tally(measured)
    for i, w in enumerate(reps):
        t0, t1, t2 = w["t0"], w["t1"], w["t2"]
        if t2 is None:
            continue
        moved = settled_at(measured, t0, t1, lambda who: who is not None and who != DEGRADED)
        back = settled_at(measured, t1, t2, lambda who: who == DEGRADED)
        slow = [r for r in measured if t0 <= r["t"] < t1 and r["status"] == "ok"
                and r["latency_ms"] >= a.degrade_ms]
        c = tally(measured, t0, t2)
        if moved is not None:
            shifts.append((moved - t0) * 1000)
        if back is not None:
            restores.append((back - t1) * 1000)
        print(f"rep {i}: calls moved off {DEGRADED} "
              f"{'never' if moved is None else f'{(moved - t0) * 1000:.0f} ms'} after the "
              f"onset (the policy on sg1 after {w['policy']:.0f} ms); back on it "
              f"{'never' if back is None else f'{(back - t1) * 1000:.0f} ms'} after the "
              f"degradation ended; {c['ok']} of {c['scheduled']} calls answered, "
              f"{len(slow)} slowed (>= {a.degrade_ms:g} ms)", flush=True)
    rate = (c1.get("probes_sent", 0) - c0.get("probes_sent", 0)) / probe_s
    print(f"calls A/1 -> /B throughout, open loop, {a.rate:g} calls/s: {counts['ok']} of "
          f"{counts['scheduled']} scheduled calls answered, {counts['failed']} failed "
          f"({counts['not_sent']} not sent), errors {counts['errors']}; latency from the "
          f"intended send time p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, max "
          f"{summary['max_ms']} ms; generator late p99 {summary['late']['p99_ms']} ms; "
          f"responders {summary['responders']}", flush=True)
    med = (lambda xs: statistics.median(xs) if xs else float("nan"))
    print(f"shift (open loop, {a.rate:g} calls/s): calls moved off the slow instance after "
          f"median {med(shifts):.0f} ms {sorted(round(s) for s in shifts)} "
          f"(target <= 500 ms at a {a.probe_ms} ms probe interval); the policy on sg1 after "
          f"{med(policies):.0f} ms; back on it after {med(restores):.0f} ms median, the policy "
          f"removed after {med(policy_restores):.0f} ms (hysteresis 3 s)")
    print(f"probe overhead: sg1 sends {rate:.0f} probe frames/s (as many replies come back); "
          f"context: Envoy's outlier detection evaluates every 10 s and ejects after 5 "
          f"consecutive errors")
    print(f"shift_ms={med(shifts):.0f} failed_calls={counts['failed']} "
          f"probe_frames_per_s={rate:.0f} probe_ms={a.probe_ms} policy_ms={med(policies):.0f} "
          f"scheduled_calls={counts['scheduled']} loop=open rate={a.rate:g} " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
