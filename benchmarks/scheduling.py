#!/usr/bin/env python3
"""The SCSC steering around a degraded instance, on Figure 2 (BMv2, Mininet).

A/1 calls the service /B (its nearest instance /B/1 is in its own pod) in a
closed loop throughout. Each repetition raises /B/1's service time (the pod
answers every request and probe ``--degrade-ms`` later) and times, on the
agents' and this process's CLOCK_MONOTONIC:
* shift: degradation onset -> the steering policy written on sg1, the
  ingress SG (the agent's own record of its last policy write), after the
  policies on the rest of the path (pushed last hop first);
* restore: degradation removed -> sg1's policy removed (hysteresis included);
and counts the calls that failed (none should: the degraded instance is slow,
not gone). Then the probe overhead: probe frames per second per probing SG
(sent; replies come back as many again).

Last line: ``shift_ms=<median> failed_calls=<sum> probe_frames_per_s=<per SG>
probe_ms=<interval>``, beside Envoy's outlier-detection defaults as context:
a 10 s evaluation interval and 5 consecutive errors before an ejection. Run as root.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402

from controller.switch.artifacts import REPO_ROOT as ROOT                      # noqa: E402
from dmsc.converge import bring_up                            # noqa: E402
from topologies.emu.net import DmscNet                                         # noqa: E402
from topologies.emu.child_processes import py_env                                      # noqa: E402
from topologies.topo import Topology                                           # noqa: E402


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
    a = ap.parse_args(argv)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    if os.geteuid() != 0:
        print("scheduling benchmark: needs root", file=sys.stderr)
        return 2
    topo = Topology.load(ROOT / "topologies" / "fig2.yaml")
    shifts, restores, failed = [], [], 0
    with tempfile.TemporaryDirectory(prefix="dmsc-sched-") as d:
        net = bring_up(DmscNet(topo, Path(d), probe_ms=a.probe_ms))
        try:
            t = net.topo
            calls = net.host("pod1").popen(
                [sys.executable, "-m", "traffic.rmi_client", "--iface", t.intf_name("pod1", 0),
                 "--src", "/A/1", "--mac", t.mac("pod1", 0), "--timeout", "2.0",
                 "--count", "100000", "--interval", "0.01", "--max-s", str(20 * a.reps + 30),
                 "/B", "echo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=str(ROOT), env=py_env())
            time.sleep(3)                       # a steady state to start from
            with net.admin("sg1") as c:
                c0 = c.state().counters
            t_probe0 = time.monotonic()
            for rep in range(a.reps):
                t0 = time.monotonic()
                net.set_service_time("pod1", a.degrade_ms)
                if not wait_for(lambda: policy_state(net)[0], 10):
                    print(f"rep {rep}: no shift within 10 s", flush=True)
                    net.set_service_time("pod1", 0)
                    continue
                shift = (policy_state(net)[1] - t0) * 1000
                shifts.append(shift)
                t1 = time.monotonic()
                net.set_service_time("pod1", 0)
                if wait_for(lambda: not policy_state(net)[0], 20):
                    restores.append((policy_state(net)[1] - t1) * 1000)
                print(f"rep {rep}: shift {shift:.0f} ms, back after "
                      f"{restores[-1] if restores else float('nan'):.0f} ms", flush=True)
                time.sleep(1.0)
            with net.admin("sg1") as c:
                c1 = c.state().counters
            probe_s = time.monotonic() - t_probe0
            calls.terminate()
            out, _ = calls.communicate(timeout=60)
            try:
                res = json.loads(out)
                failed = res["failed"]
                print(f"calls A/1 -> /B throughout: {res['ok']}/{res['sent']} ok, responders "
                      f"{res['responders']}, errors {res['errors']}", flush=True)
            except (ValueError, KeyError):
                print("calls: no summary (the load was stopped early)", flush=True)
                failed = -1
        finally:
            net.stop()
    rate = (c1.get("probes_sent", 0) - c0.get("probes_sent", 0)) / probe_s
    print(f"shift: median {statistics.median(shifts):.0f} ms {sorted(round(s) for s in shifts)} "
          f"(target <= 500 ms at a {a.probe_ms} ms probe interval); back to SPF after "
          f"{statistics.median(restores):.0f} ms median (hysteresis 3 s)")
    print(f"probe overhead: sg1 sends {rate:.0f} probe frames/s (as many replies come back); "
          f"context: Envoy's outlier detection evaluates every 10 s and ejects after 5 "
          f"consecutive errors")
    print(f"shift_ms={statistics.median(shifts):.0f} failed_calls={failed} "
          f"probe_frames_per_s={rate:.0f} probe_ms={a.probe_ms} " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
