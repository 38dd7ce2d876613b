#!/usr/bin/env python3
"""Latency against offered load, open loop, up to the knee (BMv2, Mininet).

On Figure 2, pod1 calls /B/4 (three switches each way: sg1, sr3, sg4) with the
open-loop load generator (traffic/loadgen.py: calls on a schedule whatever the
answers do, each latency from its intended send time, HdrHistogram), one step
per offered rate, each ``--step-s`` long, rates rising until the knee: the
first rate at which the p99 latency is at least twice the p99 at the lowest
rate, or fewer than 99 % of the scheduled calls are answered. Then one more
step at half the knee. The same for the distributed mode (an agent per
switch) and the central mode (one controller): the data path is the same
BMv2 pipeline, the control plane beside it differs.

Each step prints offered and answered rate, p50/p99/p99.9, the calls not sent
and the generator's own lateness p99 (a generator late by more than a few ms
is the bottleneck, not the network: the line says so). A plot of the
percentiles against offered load goes to ``--plot``.

Last line: ``knee_rps=... p99_ms_half_knee=... base_p99_ms=... central_knee_rps=...
central_p99_ms_half_knee=...`` (knee and p99 of the distributed mode first).
The 1,000-instance and churn keys the issue names (``instances``,
``cold_start_s``, ``churn_per_s``, ``churn_lost``, ``announce_p99_ms``) are not
measured by this version and so not printed. Run as root.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.switch.artifacts import REPO_ROOT as ROOT             # noqa: E402
from dmsc.converge import bring_up                                   # noqa: E402
from topologies.emu.child_processes import die_with_parent, py_env   # noqa: E402
from topologies.emu.net import DmscNet                               # noqa: E402
from topologies.topo import Topology                                 # noqa: E402

LATE_WARN_MS = 5.0           # the generator's lateness p99 above which it, not the network, limits


def step(net, rate: float, seconds: float, timeout: float) -> dict:
    t = net.topo
    cmd = [sys.executable, "-m", "traffic.loadgen", "--iface", t.intf_name("pod1", 0),
           "--src", "/A/1", "--mac", t.mac("pod1", 0), "--rate", str(rate),
           "--duration", str(seconds), "--timeout", str(timeout), "/B/4", "echo"]
    proc = net.host("pod1").popen(die_with_parent(cmd), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())
    try:
        out, err = proc.communicate(timeout=seconds + timeout + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    try:
        s = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"load generator: {err.decode()[-400:]}") from None
    s["offered"] = rate
    s["answered_rate"] = round(s["ok"] / seconds, 1)
    return s


def show(mode: str, s: dict) -> None:
    late = s["late"]["p99_ms"]
    print(f"{mode:11s} offered {s['offered']:6.0f}/s answered {s['answered_rate']:7.1f}/s "
          f"({s['answered_pct']:6.2f} %)  p50 {s['p50_ms']} p99 {s['p99_ms']} "
          f"p99.9 {s['p999_ms']} ms  not sent {s['not_sent']}  in flight <= "
          f"{s['max_in_flight']}  generator late p99 {late} ms"
          + ("  (generator-limited)" if late is not None and late > LATE_WARN_MS else ""),
          flush=True)


def sweep(mode: str, rates: list[float], seconds: float, timeout: float) -> dict:
    topo = Topology.load(ROOT / "topologies" / "fig2.yaml")
    steps: list[dict] = []
    knee = None
    with tempfile.TemporaryDirectory(prefix=f"dmsc-load-{mode}-") as d:
        net = bring_up(DmscNet(topo, Path(d)), timeout=60, mode=mode)
        try:
            step(net, rates[0], 2.0, timeout)                     # warm-up, not counted
            for rate in rates:
                s = step(net, rate, seconds, timeout)
                show(mode, s)
                steps.append(s)
                base = steps[0]["p99_ms"]
                if s["answered_pct"] < 99.0 or (base and s["p99_ms"] is not None
                                                and s["p99_ms"] >= 2 * base):
                    knee = s
                    break
            half = None
            if knee is not None:
                half = step(net, knee["offered"] / 2, seconds, timeout)
                show(mode, half)
        finally:
            net.stop()
    return {"mode": mode, "steps": steps, "knee": knee, "half": half}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2), sharey=True,
                             squeeze=False)
    for ax, r in zip(axes[0], results):
        pts = sorted(r["steps"] + ([r["half"]] if r["half"] else []), key=lambda s: s["offered"])
        x = [s["offered"] for s in pts]
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
            ax.plot(x, [s[key] for s in pts], marker="o", label=label)
        if r["knee"]:
            ax.axvline(r["knee"]["offered"], color="grey", ls="--",
                       label=f"knee {r['knee']['offered']:g}/s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (calls/s, open loop)")
        ax.set_title(f"Figure 2, pod1 -> /B/4, {r['mode']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0][0].set_ylabel("latency from intended send (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="distributed,central")
    ap.add_argument("--rates", default="50,100,200,400,600,800,1000,1200,1600,2000,2400,3200",
                    help="offered rates, calls/s, rising; the sweep stops at the knee")
    ap.add_argument("--step-s", type=float, default=8.0)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--plot", default="load.png")
    ap.add_argument("--json", help="write every step's summary here")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("load benchmark: needs root", file=sys.stderr)
        return 2
    rates = [float(x) for x in a.rates.split(",")]
    results = [sweep(m, rates, a.step_s, a.timeout) for m in a.modes.split(",")]
    plot(results, Path(a.plot))
    if a.json:
        for r in results:
            for s in r["steps"] + ([r["half"]] if r["half"] else []):
                s.pop("histogram", None)
        Path(a.json).write_text(json.dumps(results, indent=1))
    print(f"plot: {a.plot}")
    keys = []
    for r in results:
        pre = "" if r["mode"] == "distributed" else f"{r['mode']}_"
        knee = r["knee"]["offered"] if r["knee"] else None
        if knee is None:
            print(f"{r['mode']}: no knee up to {rates[-1]:g}/s")
        keys += [f"{pre}knee_rps={knee if knee is None else f'{knee:g}'}",
                 f"{pre}p99_ms_half_knee={r['half']['p99_ms'] if r['half'] else None}",
                 f"{pre}base_p99_ms={r['steps'][0]['p99_ms']}"]
    print(" ".join(keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
