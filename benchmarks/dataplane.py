#!/usr/bin/env python3
"""Data-plane throughput: the DMSC program against a minimal IPv4-LPM program.

Same BMv2 binary, same generator, same frame size, same number of routes, in
the same run, alternating rounds. One switch, two veth ports: frames go in on
port 1 and out on port 2; each route points at port 2. The generator is a
separate process sending pre-built frames from a raw socket in a tight loop
(no per-packet Scapy), cycling over one destination per route. Forwarding
rate = frames counted by the kernel on the receiving veth per second, sampled
in the steady state of each round; offered rate = frames the generator got
onto the wire. The switch is the bottleneck when offered >> forwarded (the
switch drops the excess): the output prints both.

IPv4 frames carry 127.x.y.z destinations: they never leave the veth pair, and
no address outside this machine appears on the wire.

Last line: ``ratio=<dmsc pps / ipv4 pps>`` (median of the rounds).
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

from scapy.layers.inet import IP, UDP          # noqa: E402
from scapy.layers.l2 import Ether             # noqa: E402
from scapy.packet import Raw                  # noqa: E402

from controller.switch.tables import Fib, base_entries  # noqa: E402
from controller.routing.route import Route  # noqa: E402
from topologies.topo import NextHop  # noqa: E402
from controller.switch.p4rt import INSERT, SwitchConnection     # noqa: E402
from controller.switch.artifacts import (BASELINE_JSON, BASELINE_P4INFO,  # noqa: E402
                                         BMV2_JSON, P4INFO)
from topologies.emu.apps.bmv2 import Bmv2Process        # noqa: E402
from topologies.emu.veth import VethPairs          # noqa: E402
from traffic.wire import layers                # noqa: E402
from traffic.wire.link import ETH_P_ALL, RawLink    # noqa: E402

OUT_MAC = "02:00:00:00:bb:02"


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


def dmsc_setup(sw: SwitchConnection, routes: int, size: int) -> list[bytes]:
    sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
    sw.write(base_entries(sw, 1, {1: ("pod", "02:00:00:00:aa:01"), 2: ("core", "02:00:00:00:aa:02")}))
    Fib(sw).sync({f"/svc{i}/api": Route.via([NextHop(2, OUT_MAC)]) for i in range(routes)})
    frames = []
    for i in range(routes):
        raw = bytes(layers.request(f"/svc{i}/api/x", "/bench/client", "m", {}, msg_id=i))
        frames.append(raw + b"\x00" * (size - len(raw)) if len(raw) < size else raw)
    return frames


def lpm_setup(sw: SwitchConnection, routes: int, size: int) -> list[bytes]:
    sw.set_pipeline(str(BASELINE_P4INFO), str(BASELINE_JSON))
    ents = [sw.table_entry("LpmEgress.port_mac", {"port": 2}, action="LpmEgress.set_src_mac",
                           params={"smac": 0x02000000AA02})]
    frames = []
    for i in range(routes):
        net = (127 << 24) | ((1 + i // 250) << 16) | ((i % 250) << 8)
        ents.append(sw.table_entry("LpmIngress.ipv4_lpm", {"dst_addr": (net, 24)},
                                   action="LpmIngress.forward",
                                   params={"port": 2, "dmac": int(OUT_MAC.replace(":", ""), 16)}))
        dst = f"127.{net >> 16 & 255}.{net >> 8 & 255}.9"
        pkt = Ether(src="02:00:00:00:cc:01", dst="02:00:00:00:aa:01") / IP(
            src="127.0.0.1", dst=dst, ttl=64) / UDP(sport=9, dport=9)
        frames.append(bytes(pkt / Raw(b"\x00" * max(0, size - len(pkt)))))
    sw.write([(INSERT, e) for e in ents])
    return frames


def run_round(program: str, veths, log_dir, args) -> dict:
    h_in, h_out = veths.host_side(1), veths.host_side(2)
    with Bmv2Process(f"bench-{program}", 1, {1: veths.switch_side(1), 2: veths.switch_side(2)},
                     log_dir=log_dir, log_level=None) as proc:
        with SwitchConnection(program, proc.grpc_addr, 1).connect() as sw:
            frames = (dmsc_setup if program == "dmsc" else lpm_setup)(sw, args.routes, args.size)
            sizes = {len(f) for f in frames}
            gen = mp.get_context("spawn").Process(
                target=blast, args=(h_in, frames, args.duration, args.max_frames))
            t_start = time.monotonic()
            gen.start()
            time.sleep(args.warmup)          # benchmark warm-up, not a wait for readiness
            rx0, tx0, t0 = rx_packets(h_out), tx_packets(h_in), time.monotonic()
            time.sleep(args.duration - args.warmup - 0.5)
            rx1, tx1, t1 = rx_packets(h_out), tx_packets(h_in), time.monotonic()
            gen.join(args.duration + 10)
            if gen.is_alive():
                gen.terminate()
                gen.join()
            assert time.monotonic() - t_start < args.duration + 15
    return {"program": program, "forwarded_pps": (rx1 - rx0) / (t1 - t0),
            "offered_pps": (tx1 - tx0) / (t1 - t0), "frame_bytes": sorted(sizes)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--size", type=int, default=128, help="frame size in bytes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    ap.add_argument("--warmup", type=float, default=1.5)
    ap.add_argument("--max-frames", type=int, default=5_000_000, help="generator cap per round")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("dataplane benchmark: needs root (veths, raw sockets)", file=sys.stderr)
        return 2
    results = {"dmsc": [], "ipv4": []}
    with tempfile.TemporaryDirectory(prefix="dmsc-bench-") as log_dir, VethPairs(2, "db") as veths:
        for r in range(args.rounds):
            for program in (("dmsc", "ipv4") if r % 2 == 0 else ("ipv4", "dmsc")):
                res = run_round(program, veths, log_dir, args)
                results[program].append(res)
                print(f"round {r + 1} {program:5s}: forwarded {res['forwarded_pps']:9.0f} pps, "
                      f"offered {res['offered_pps']:9.0f} pps, frames {res['frame_bytes']} B",
                      flush=True)
    med = {p: statistics.median(x["forwarded_pps"] for x in v) for p, v in results.items()}
    offered = {p: statistics.median(x["offered_pps"] for x in v) for p, v in results.items()}
    print(f"routes={args.routes} frame_bytes={args.size} rounds={args.rounds} "
          f"duration_s={args.duration}")
    for p in ("dmsc", "ipv4"):
        print(f"{p}: median forwarded {med[p]:.0f} pps; generator offered {offered[p]:.0f} pps "
              f"({offered[p] / max(med[p], 1):.1f}x what the switch forwarded)")
    limited = all(offered[p] > 1.5 * med[p] for p in med)
    print("generator is not the bottleneck: it offered more than 1.5x what the switch forwarded"
          if limited else
          "WARNING: the generator offered less than 1.5x the forwarded rate; it may be the limit")
    print(f"ratio={med['dmsc'] / med['ipv4']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
