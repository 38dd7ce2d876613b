#!/usr/bin/env python3
"""Where a reroute's time goes: detection, the flood wave, and the cores, per trial.

Reads what a ``convergence.py --log-dir DIR`` run left: its output (each
trial's ``cut at`` time, the failed link and the calls' destination), the
network's ``topology.yaml`` and agents' logs (``DIR/run1``), and optionally
``cpu_sampler.py``'s samples taken meanwhile. For each trial prints:
* when each end of the cut link declared the other down (``adjacency down``),
* the first FIB write after the cut of every 5th switch on the answers' path
  (from the destination's SG back to the link: these switches must all turn
  around before an answer arrives), and the wave: from the first detection to
  the last of those writes, in all and a hop,
* with samples: the cores used by BMv2s, agents and everything else in 200 ms
  bins from 0.4 s before the cut to 3.2 s after it.

    python3 benchmarks/reroute_timeline.py --output conv.txt --run-dir DIR/run1 [--cpu cpu.txt]
"""
from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from topologies.topo import Topology            # noqa: E402

LINE_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def log_events(path: Path) -> list[tuple[float, str]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = LINE_TIME.match(line)
        if m and ("adjacency down" in line or "FIB v" in line):
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((t, line[m.end():]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, required=True, help="convergence.py's output")
    ap.add_argument("--run-dir", type=Path, required=True, help="its --log-dir's run<N>")
    ap.add_argument("--cpu", type=Path, help="cpu_sampler.py's samples")
    a = ap.parse_args(argv)
    text = a.output.read_text()
    m = re.search(r"link (\S+)-(\S+) fails under calls (\S+) -> ([^\s,]+)", text)
    if m is None:
        raise SystemExit(f"{a.output}: no link-failure line")
    near, far, _pod, dst = m.groups()
    cuts = re.findall(r"cut at (\d\d:\d\d:\d\d\.\d{3})", text)
    topo = Topology.load(a.run_dir / "topology.yaml")
    owner = next(p for p in topo.pods() if dst in topo.instances(p))
    import networkx as nx
    path = nx.shortest_path(topo.core_graph(), topo.gateway(owner), near, weight="cost")
    if far not in path:
        raise SystemExit(f"the answers from {dst} do not cross {near}-{far}")
    path = path[:path.index(far) + 1]             # destination's SG ... far end
    events = {s: log_events(a.run_dir / "agents" / f"{s}.log") for s in topo.switches()}
    day = datetime.datetime.fromtimestamp(min(t for e in events.values() for t, _ in e)).date()
    samples = []
    if a.cpu:
        samples = [tuple(map(float, ln.split())) for ln in a.cpu.read_text().splitlines()
                   if ln and not ln.startswith("#")]
    for cut in cuts:
        t0 = datetime.datetime.strptime(f"{day} {cut}", "%Y-%m-%d %H:%M:%S.%f").timestamp()

        def first(switch: str, what: str):
            return next(((t - t0) * 1000 for t, msg in events[switch]
                         if t0 < t < t0 + 10 and what in msg), None)
        det = {s: first(s, "adjacency down") for s in (near, far)}
        print(f"cut at {cut}: {near}-{far} down at {near} after "
              + " and at ".join(f"{'never' if v is None else f'{v:.0f} ms'}"
                                + ("" if s == near else f" at {s}") for s, v in det.items()))
        wave = [(s, first(s, "FIB v")) for s in reversed(path)]     # far end ... dst's SG
        shown = [f"{s} {'-' if t is None else f'{t:.0f}'}" for i, (s, t) in enumerate(wave)
                 if i % 5 == 0 or i == len(wave) - 1]
        print(f"  FIB written (ms after the cut), {far} -> {path[0]}: " + ", ".join(shown))
        known = [v for v in det.values() if v is not None]
        written = [t for _s, t in wave if t is not None]
        if known and len(written) == len(wave):
            last = max(written)
            print(f"  wave: {last - min(known):.0f} ms from the first detection to the last "
                  f"FIB write on the path, {(last - min(known)) / (len(wave) - 1):.1f} ms a "
                  f"hop ({len(wave) - 1} hops)")
        bins: dict[int, list[float]] = {}
        for prev, cur in zip(samples, samples[1:]):
            if t0 - 0.4 <= cur[0] <= t0 + 3.2:
                b = bins.setdefault(int((cur[0] - t0) // 0.2), [0.0, 0.0, 0.0, 0.0])
                for i in range(4):
                    b[i] += cur[i] - prev[i]
        for b, (dt, bm, ag, ot) in sorted(bins.items()):
            print(f"  {b * 200:5d} ms: BMv2s {bm / dt * 100:4.0f} %  agents {ag / dt * 100:4.0f} %"
                  f"  other {ot / dt * 100:4.0f} % of a core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
