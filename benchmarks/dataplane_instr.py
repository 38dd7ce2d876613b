#!/usr/bin/env python3
"""Data-plane cost in instructions: each program's BMv2 instructions per frame under callgrind.

``benchmarks/dataplane.py`` measures forwarding rates, and on two shared cores
one program's rate moves by 10-40 % between rounds: the switch's five threads
and the generator fight for the cores. Instructions do not move: valgrind's
callgrind counts the instructions BMv2 executes, whatever else the machine
does, so two programs (or two versions of one) compare to a fraction of a
percent in one run. Instructions are not time (cache misses, the threads'
hand-offs), so this is the profile, and ``dataplane.py`` stays the figure.

For each program: start ``simple_switch_grpc`` under callgrind with
instrumentation off, load the program and its routes (as ``dataplane.py``
does), switch instrumentation on, send ``--frames`` frames paced so that none
is dropped, check that every one came out of port 2, dump, and divide. An
idle window of the same length (no frames) is measured and subtracted: what is
left is what the frames cost. ``--top`` prints the functions with the most
instructions per frame (inclusive of what they call).

Last line: ``instr_ratio_<n>=<ipv4 Ir per frame / dmsc Ir per frame>`` for each
prefix count (the same direction as ``dataplane.py``'s ratio: 1.0 means as cheap
as the baseline).
Run as root: ``sudo .venv/bin/python benchmarks/dataplane_instr.py``.
Needs valgrind (Debian/Ubuntu package ``valgrind``).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataplane as dp                                       # noqa: E402
from controller.switch.p4rt import SwitchConnection          # noqa: E402
from topologies.emu.apps.bmv2_app import BUILDS, Bmv2Process, bmv2_binary  # noqa: E402
from topologies.emu.veth import VethPairs                    # noqa: E402
from traffic.wire.link import ETH_P_ALL, RawLink             # noqa: E402


class CallgrindBmv2(Bmv2Process):
    """BMv2 under callgrind, instrumentation off until :meth:`instrument`."""
    start_timeout_s = 300.0

    def __init__(self, *a, out_file: Path, **kw):
        super().__init__(*a, **kw)
        self.out_file = out_file

    def command(self) -> list[str]:
        return ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={self.out_file}"] + super().command()

    def control(self, *flags: str) -> None:
        subprocess.run(["callgrind_control", *flags, str(self.proc.pid)], check=True,
                       capture_output=True, timeout=120)


def total_ir(path: Path) -> int:
    """Instructions in a callgrind dump (its ``totals:`` or ``summary:`` line)."""
    for line in path.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"{path}: no totals line")


def dumps(out_file: Path) -> list[Path]:
    return sorted(out_file.parent.glob(out_file.name + ".*"),
                  key=lambda p: int(p.name.rsplit(".", 1)[1]) if p.name.rsplit(".", 1)[1].isdigit()
                  else 0)


def send_paced(iface: str, frames: list[bytes], count: int, rate: float) -> None:
    with RawLink(iface, ethertype=ETH_P_ALL) as link:
        t0 = time.monotonic()
        for n in range(count):
            link.sock.send(frames[n % len(frames)])
            delay = t0 + (n + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def window(proc: CallgrindBmv2, out: Path, seconds: float, send=None) -> int:
    """Instructions executed during one window: zero, (send), dump."""
    before = set(dumps(out))
    proc.control("-z")
    t0 = time.monotonic()
    if send:
        send()
    time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    proc.control("-d")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [p for p in dumps(out) if p not in before]
        if new:
            time.sleep(0.2)          # let callgrind finish writing
            return total_ir(new[-1])
        time.sleep(0.1)
    raise RuntimeError("callgrind did not dump")


def measure(program: str, setup, frames: list[bytes], args, veths, work: Path) -> dict:
    out = work / f"callgrind.{program}.{args.routes}"   # one run per program and route count
    h_in, h_out = veths.host_side(1), veths.host_side(2)
    with CallgrindBmv2(f"instr-{program}", 1, {1: veths.switch_side(1), 2: veths.switch_side(2)},
                       log_dir=work, log_level="off", out_file=out,
                       binary=bmv2_binary(args.build)) as proc:
        with SwitchConnection("bench", proc.grpc_addr, 1).connect() as sw:
            setup(sw, args.routes)
            proc.control("-i", "on")
            send_paced(h_in, frames, 20, args.rate)          # warm the paths up
            time.sleep(1.0)
            seconds = args.frames / args.rate + 1.0
            idle = window(proc, out, seconds)
            rx0 = dp.rx_packets(h_out)
            busy = window(proc, out, seconds,
                          lambda: send_paced(h_in, frames, args.frames, args.rate))
            deadline = time.monotonic() + 30
            while dp.rx_packets(h_out) - rx0 < args.frames and time.monotonic() < deadline:
                time.sleep(0.1)
            got = dp.rx_packets(h_out) - rx0
            if got != args.frames:
                raise SystemExit(f"{program}: {got} of {args.frames} frames came out: lower --rate")
            last = dumps(out)[-1]
    return {"program": program, "ir_per_frame": (busy - idle) / args.frames,
            "idle_ir": idle, "busy_ir": busy, "dump": last}


def top_functions(dump: Path, n: int) -> str:
    if n <= 0 or shutil.which("callgrind_annotate") is None:
        return ""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(dump)],
                          capture_output=True, text=True, timeout=120).stdout
    rows = [ln for ln in text.splitlines() if re.match(r"\s*[\d,]+ \(", ln)]
    return "\n".join(rows[:n])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefixes", "--routes", type=dp.prefix_counts, default=[1000, 10000],
                    help="routes per program, or a comma-separated list (default 1000,10000)")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0,
                    help="frames/s sent (under callgrind BMv2 is about 50x slower)")
    ap.add_argument("--program", action="append", default=[],
                    help="NAME=BMV2_JSON: a variant of the DMSC program (same P4Info) or, "
                         "named ipv4*, of the baseline; repeatable. Default: trivial, ipv4, dmsc")
    ap.add_argument("--top", type=int, default=0, help="functions to print per program")
    ap.add_argument("--build", choices=sorted(BUILDS), default="default",
                    help="the BMv2 build: default (on PATH) or perf (scripts/toolchain.py "
                         "--flavour perf)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="copy each program's callgrind dump of the frames here")
    args = ap.parse_args(argv)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    if os.geteuid() != 0:
        print("dataplane_instr: needs root (veths, raw sockets)", file=sys.stderr)
        return 2
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("dataplane_instr: needs valgrind (package valgrind)", file=sys.stderr)
        return 2
    programs = {"trivial": dp.trivial_setup, "ipv4": dp.ipv4_setup, "dmsc": dp.dmsc_setup}
    for spec in args.program:
        name, _, path = spec.partition("=")
        programs[name] = variant_setup(name, Path(path).resolve())
    ratios = {}
    with tempfile.TemporaryDirectory(prefix="dmsc-instr-") as work, VethPairs(2, "di") as veths:
        for routes in args.prefixes:
            args.routes = routes
            ratios[routes] = measure_all(programs, args, veths, Path(work))
    print(" ".join(f"instr_ratio_{n}={r:.3f}" for n, r in ratios.items()) + " " + mon.kv())
    return 0


def measure_all(programs: dict, args, veths, work: Path) -> float:
    """Every program with ``args.routes`` routes; returns IPv4's instructions
    per frame over the DMSC program's."""
    frames = {"dmsc": dp.dmsc_frames(args.routes, 128), "ipv4": dp.ipv4_frames(args.routes, 128)}
    results = {}
    for name, setup in programs.items():
        kind = "ipv4" if name.startswith("ipv4") else "dmsc"
        res = measure(name, setup, frames[kind], args, veths, work)
        results[name] = res
        print(f"{name:12s}: {res['ir_per_frame']:10,.0f} instructions per frame "
              f"({args.routes} routes, {args.frames} frames at {args.rate:.0f}/s, every one "
              f"forwarded; idle window {res['idle_ir']:,} subtracted)", flush=True)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(res["dump"], args.keep / f"callgrind.{name}.{args.routes}")
        top = top_functions(res["dump"], args.top)
        if top:
            print(top, flush=True)
    base = results["ipv4"]["ir_per_frame"]
    for name, res in results.items():
        print(f"  {args.routes} routes: ipv4/{name}: {base / res['ir_per_frame']:.3f}")
    return base / results["dmsc"]["ir_per_frame"]


def variant_setup(name: str, json_path: Path):
    """A compiled variant: the baseline's P4Info and routes for ipv4*, else the DMSC program's."""
    base = dp.ipv4_setup if name.startswith("ipv4") else dp.dmsc_setup
    return lambda sw, routes: base(sw, routes, json_path)


if __name__ == "__main__":
    sys.exit(main())
