#!/usr/bin/env python3
"""Data-plane throughput: the DMSC program against a minimal IPv4-LPM program and a trivial port-forward program.

Three programs on the same BMv2 binary, same generator, same frame size, same
number of routes, in the same run, in rounds whose order rotates:

- ``trivial`` (benchmarks/trivial.p4): port 1 -> port 2, no table. The ceiling
  of this BMv2 build on this machine: nothing forwards faster.
- ``ipv4`` (benchmarks/ipv4_lpm.p4): the honest minimal IPv4 router, one LPM
  table with ``--prefixes`` routes, TTL decrement, source-MAC rewrite.
- ``dmsc`` (p4src/): the real program with ``--prefixes`` name prefixes in the
  FIB and every feature on (validation, port roles, hop limit, the policy
  stage, ECMP through the action selector, probe records, counters).

One switch, two veth ports: frames go in on port 1 and out on port 2; each
route points at port 2. BMv2 runs with ``--log-level off`` (without it BMv2
formats every trace message into a null sink). The generator is a separate
process sending pre-built frames from a raw socket in a tight loop (no
per-packet Scapy), cycling over one destination per route. Forwarding rate =
frames counted by the kernel on the receiving veth per second, sampled in the
steady state of each round; offered rate = frames the generator got onto the
wire. The switch is the bottleneck when offered >> forwarded (the switch drops
the excess): the output prints both, and the CPU time the switch process and
the generator used per forwarded frame.

IPv4 frames carry 127.x.y.z destinations: they never leave the veth pair, and
no address outside this machine appears on the wire.

Each round measures the three programs one after the other, in an order that
rotates from round to round, so that no program always runs first (or last)
on a machine whose load drifts. The ratio of a round is dmsc's rate over
ipv4's in that round; the figure is the median of the rounds' ratios, printed
with their spread (lowest-highest).

Last line: ``ratio_<n>=<median of the rounds' dmsc pps / ipv4 pps>
spread_<n>=<lowest>-<highest>`` for each prefix count, and ``ratio=`` the
lowest median.
Run as root: ``sudo .venv/bin/python benchmarks/dataplane.py``.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402

from scapy.layers.inet import IP, UDP          # noqa: E402
from scapy.layers.l2 import Ether             # noqa: E402
from scapy.packet import Raw                  # noqa: E402

from controller.switch.tables import Fib, base_entries  # noqa: E402
from controller.routing.route import Route  # noqa: E402
from topologies.emu.child_processes import cpu_seconds  # noqa: E402
from topologies.topo import NextHop  # noqa: E402
from controller.switch.p4rt import INSERT, SwitchConnection     # noqa: E402
from controller.switch.artifacts import (BASELINE_JSON, BASELINE_P4INFO,  # noqa: E402
                                         BMV2_JSON, P4INFO, TRIVIAL_JSON, TRIVIAL_P4INFO)
from topologies.emu.apps.bmv2_app import BUILDS, Bmv2Process, bmv2_binary        # noqa: E402
from topologies.emu.veth import VethPairs          # noqa: E402
from traffic.wire import layers                # noqa: E402
from traffic.wire.link import ETH_P_ALL, RawLink    # noqa: E402

OUT_MAC = "02:00:00:00:bb:02"
PROGRAMS = ("trivial", "ipv4", "dmsc")


def rx_packets(iface: str) -> int:
    return int(Path(f"/sys/class/net/{iface}/statistics/rx_packets").read_text())


def tx_packets(iface: str) -> int:
    return int(Path(f"/sys/class/net/{iface}/statistics/tx_packets").read_text())


def blast(iface: str, frames: list[bytes], duration: float, max_frames: int) -> None:
    """The generator: bounded in time and count."""
    with RawLink(iface, ethertype=ETH_P_ALL) as link:
        sock = link.sock
        sock.setblocking(True)
        n, i, k = 0, 0, len(frames)
        deadline = time.monotonic() + duration
        while n < max_frames:
            sock.send(frames[i])
            i = i + 1 if i + 1 < k else 0
            n += 1
            if n & 1023 == 0 and time.monotonic() > deadline:
                break


def pad(raw: bytes, size: int) -> bytes:
    return raw + b"\x00" * (size - len(raw)) if len(raw) < size else raw


def dmsc_frames(routes: int, size: int) -> list[bytes]:
    return [pad(bytes(layers.request(f"/svc{i}/api/x", "/bench/client", "m", {}, msg_id=i)), size)
            for i in range(routes)]


def ipv4_net(i: int) -> int:
    return (127 << 24) | ((1 + i // 250) << 16) | ((i % 250) << 8)


def ipv4_frames(routes: int, size: int) -> list[bytes]:
    frames = []
    for i in range(routes):
        net = ipv4_net(i)
        dst = f"127.{net >> 16 & 255}.{net >> 8 & 255}.9"
        pkt = Ether(src="02:00:00:00:cc:01", dst="02:00:00:00:aa:01") / IP(
            src="127.0.0.1", dst=dst, ttl=64) / UDP(sport=9, dport=9)
        frames.append(bytes(pkt / Raw(b"\x00" * max(0, size - len(pkt)))))
    return frames


def dmsc_setup(sw: SwitchConnection, routes: int, json_path=BMV2_JSON) -> None:
    sw.set_pipeline(str(P4INFO), str(json_path))
    # Transit (core port to core port): what most switches on a path do, and the
    # path the IPv4 baseline's LPM forwarding compares with. A pod port adds the
    # SG's source-name check (one LPM table), on the first switch only.
    sw.write(base_entries(sw, 1, {1: ("core", "02:00:00:00:aa:01"), 2: ("core", "02:00:00:00:aa:02")}))
    Fib(sw).sync({f"/svc{i}/api": Route.via([NextHop(2, OUT_MAC)]) for i in range(routes)})


def ipv4_setup(sw: SwitchConnection, routes: int, json_path=BASELINE_JSON) -> None:
    sw.set_pipeline(str(BASELINE_P4INFO), str(json_path))
    ents = [sw.table_entry("LpmEgress.port_mac", {"port": 2}, action="LpmEgress.set_src_mac",
                           params={"smac": 0x02000000AA02})]
    for i in range(routes):
        ents.append(sw.table_entry("LpmIngress.ipv4_lpm", {"dst_addr": (ipv4_net(i), 24)},
                                   action="LpmIngress.forward",
                                   params={"port": 2, "dmac": int(OUT_MAC.replace(":", ""), 16)}))
    sw.write([(INSERT, e) for e in ents])


def trivial_setup(sw: SwitchConnection, routes: int) -> None:
    sw.set_pipeline(str(TRIVIAL_P4INFO), str(TRIVIAL_JSON))


SETUP = {"trivial": trivial_setup, "ipv4": ipv4_setup, "dmsc": dmsc_setup}


def run_round(program: str, frames: list[bytes], veths, log_dir, args, setup=None) -> dict:
    """One program, one measurement. ``setup(sw, routes)`` loads the program
    (default: the one named); the profiling script passes variants."""
    h_in, h_out = veths.host_side(1), veths.host_side(2)
    with Bmv2Process(f"bench-{program}", 1, {1: veths.switch_side(1), 2: veths.switch_side(2)},
                     log_dir=log_dir, log_level=args.bmv2_log_level,
                     binary=bmv2_binary(args.build)) as proc:
        with SwitchConnection("bench", proc.grpc_addr, 1).connect() as sw:
            (setup or SETUP[program])(sw, args.routes)
            gen = mp.get_context("spawn").Process(
                target=blast, args=(h_in, frames, args.duration, args.max_frames))
            t_start = time.monotonic()
            gen.start()
            time.sleep(args.warmup)          # benchmark warm-up, not a wait for readiness
            rx0, tx0, t0 = rx_packets(h_out), tx_packets(h_in), time.monotonic()
            sw0, gen0 = cpu_seconds(proc.proc.pid), cpu_seconds(gen.pid)
            time.sleep(args.duration - args.warmup - 0.5)
            rx1, tx1, t1 = rx_packets(h_out), tx_packets(h_in), time.monotonic()
            sw1, gen1 = cpu_seconds(proc.proc.pid), cpu_seconds(gen.pid)
            gen.join(args.duration + 10)
            if gen.is_alive():
                gen.terminate()
                gen.join()
            assert time.monotonic() - t_start < args.duration + 15
    fwd = max(rx1 - rx0, 1)
    return {"program": program, "forwarded_pps": (rx1 - rx0) / (t1 - t0),
            "offered_pps": (tx1 - tx0) / (t1 - t0),
            "switch_us_per_frame": (sw1 - sw0) / fwd * 1e6,
            "gen_us_per_frame": (gen1 - gen0) / max(tx1 - tx0, 1) * 1e6,
            "frame_bytes": sorted({len(f) for f in frames})}


def measure(routes: int, args, veths, log_dir) -> dict[str, list[dict]]:
    frames = {"dmsc": dmsc_frames(routes, args.size), "ipv4": ipv4_frames(routes, args.size)}
    frames["trivial"] = frames["dmsc"]
    args.routes = routes
    results = {p: [] for p in PROGRAMS}
    for r in range(args.rounds):
        order = PROGRAMS[r % 3:] + PROGRAMS[:r % 3]
        for program in order:
            res = run_round(program, frames[program], veths, log_dir, args)
            results[program].append(res)
            print(f"prefixes {routes} round {r + 1} {program:7s}: forwarded "
                  f"{res['forwarded_pps']:7.0f} pps, offered {res['offered_pps']:7.0f} pps, "
                  f"switch CPU {res['switch_us_per_frame']:5.1f} us/frame, "
                  f"generator {res['gen_us_per_frame']:4.1f} us/frame, "
                  f"frames {res['frame_bytes']} B", flush=True)
    return results


def round_ratios(results: dict) -> list[float]:
    """dmsc/ipv4 forwarding rate of each round: the two programs measured in the
    same round (minutes apart at most) share the machine's state of that moment."""
    return [d["forwarded_pps"] / max(i["forwarded_pps"], 1e-9)
            for d, i in zip(results["dmsc"], results["ipv4"])]


def summarize(routes: int, results: dict, args) -> float:
    def med(p, k):
        return statistics.median(x[k] for x in results[p])
    print(f"prefixes={routes} frame_bytes={args.size} rounds={args.rounds} "
          f"duration_s={args.duration} build={args.build}")
    for p in PROGRAMS:
        rates = [x["forwarded_pps"] for x in results[p]]
        print(f"  {p:7s}: median forwarded {med(p, 'forwarded_pps'):6.0f} pps "
              f"(rounds {min(rates):.0f}-{max(rates):.0f}; switch CPU "
              f"{med(p, 'switch_us_per_frame'):5.1f} us/frame); generator offered "
              f"{med(p, 'offered_pps'):6.0f} pps "
              f"({med(p, 'offered_pps') / max(med(p, 'forwarded_pps'), 1):.1f}x forwarded)")
    fwd = {p: med(p, "forwarded_pps") for p in PROGRAMS}
    limited = all(med(p, "offered_pps") > 1.5 * fwd[p] for p in PROGRAMS)
    print("  generator is not the bottleneck: it offered more than 1.5x what the switch forwarded"
          if limited else
          "  WARNING: the generator offered less than 1.5x the forwarded rate; it may be the limit")
    per_round = round_ratios(results)
    ratio = statistics.median(per_round)
    print(f"  forwarding rate dmsc/ipv4 by round (the order rotates): "
          + " ".join(f"{r:.3f}" for r in per_round))
    print(f"  forwarding rate dmsc/ipv4: median {ratio:.3f} over {len(per_round)} rounds, "
          f"spread {min(per_round):.3f}-{max(per_round):.3f}   (medians of rates: dmsc/ipv4 "
          f"{fwd['dmsc'] / fwd['ipv4']:.3f}   dmsc/trivial {fwd['dmsc'] / fwd['trivial']:.3f}   "
          f"ipv4/trivial {fwd['ipv4'] / fwd['trivial']:.3f})")
    cpu = {p: med(p, "switch_us_per_frame") for p in PROGRAMS}
    # The same comparison from the switch's CPU time per frame: steadier than
    # rates when other processes share the cores.
    print(f"  switch CPU per frame, inverted: ipv4/dmsc {cpu['ipv4'] / cpu['dmsc']:.3f}   "
          f"trivial/dmsc {cpu['trivial'] / cpu['dmsc']:.3f}   "
          f"trivial/ipv4 {cpu['trivial'] / cpu['ipv4']:.3f}")
    return ratio, (min(per_round), max(per_round))


def prefix_counts(text: str) -> list[int]:
    counts = [int(x) for x in text.split(",") if x.strip()]
    if not counts or min(counts) < 1 or max(counts) > 16000:
        raise argparse.ArgumentTypeError("prefix counts between 1 and 16000, comma separated")
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefixes", "--routes", type=prefix_counts, default=[1000, 10000],
                    help="routes per program, or a comma-separated list (default 1000,10000)")
    ap.add_argument("--size", type=int, default=128, help="frame size in bytes")
    ap.add_argument("--build", choices=sorted(BUILDS), default="default",
                    help="the BMv2 build: default (on PATH) or perf (scripts/toolchain.py "
                         "--flavour perf: no logging macros, -O3)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds; each runs the three programs, in an order that rotates")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    ap.add_argument("--warmup", type=float, default=1.5)
    ap.add_argument("--max-frames", type=int, default=5_000_000, help="generator cap per round")
    ap.add_argument("--bmv2-log-level", default="off",
                    help="BMv2 --log-level (default off; 'trace' shows what logging costs)")
    args = ap.parse_args(argv)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    if os.geteuid() != 0:
        print("dataplane benchmark: needs root (veths, raw sockets)", file=sys.stderr)
        return 2
    ratios, spreads = {}, {}
    with tempfile.TemporaryDirectory(prefix="dmsc-bench-") as log_dir, VethPairs(2, "db") as veths:
        for routes in args.prefixes:
            ratios[routes], spreads[routes] = summarize(
                routes, measure(routes, args, veths, log_dir), args)
    print(" ".join(f"ratio_{n}={r:.3f} spread_{n}={spreads[n][0]:.3f}-{spreads[n][1]:.3f}"
                   for n, r in ratios.items())
          + f" ratio={min(ratios.values()):.3f} " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
