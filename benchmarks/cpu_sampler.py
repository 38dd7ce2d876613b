#!/usr/bin/env python3
"""CPU of the testbed's processes by kind, sampled: a profile of where the cores go.

Every ``--every`` seconds for ``--seconds``, one line: the wall clock and the
CPU seconds (utime + stime, from /proc) used so far by all BMv2s
(``simple_switch``), all agent processes (``controller.agent``) and every other
process, summed. Differences between lines are the cores each kind used in
between; ``reroute_timeline.py`` bins them around each cut of a
``convergence.py`` run. Scanning /proc costs CPU itself (about 10 % of a core
at 50 ms with 64 switches): the benchmark's fidelity monitor sees it as
foreign load.

    python3 benchmarks/cpu_sampler.py --out cpu.txt --seconds 400 &
"""
from __future__ import annotations

import argparse
import os
import time


def sample() -> dict[str, int]:
    """Clock ticks used so far by each kind of process."""
    out = {"bmv2": 0, "agents": 0, "other": 0}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:                      # gone meanwhile
            continue
        kind = ("bmv2" if b"simple_switch" in cmd
                else "agents" if b"controller.agent" in cmd else "other")
        out[kind] += int(fields[11]) + int(fields[12])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--every", type=float, default=0.05)
    a = ap.parse_args(argv)
    hz = os.sysconf("SC_CLK_TCK")
    end = time.time() + a.seconds
    with open(a.out, "w") as out:
        out.write("# wall_clock bmv2_cpu_s agents_cpu_s other_cpu_s\n")
        while time.time() < end:
            s = sample()
            out.write(f"{time.time():.3f} {s['bmv2'] / hz:.2f} {s['agents'] / hz:.2f} "
                      f"{s['other'] / hz:.2f}\n")
            out.flush()
            time.sleep(a.every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
