#!/usr/bin/env python3
"""CPU cost of P4Runtime traffic in the controller process: where protobuf and
the stream's threads spend an agent's time.

* messages: building + serialising a PacketOut (as ``SwitchConnection.packet_out``
  does, plus the serialisation gRPC does) and parsing + decoding a PacketIn, per
  message, no I/O; and building + serialising a 2,000-update FIB WriteRequest.
* round: packet-out -> packet-in through a real gRPC StreamChannel, closed loop,
  against a fake P4Runtime server in a child process that echoes every
  packet-out as a packet-in (so only the controller side is counted): CPU
  seconds of this process (all its threads) per round, and wall time per round.
* --bmv2 (needs root and simple_switch_grpc): one BMv2 with the DMSC pipeline,
  N FIB entries in batched Writes; CPU of this process against CPU of BMv2
  during the writes, to say whose time a batched write is.

It uses only SwitchConnection's public API, so the same script measures any
stack (run it with another checkout on PYTHONPATH to compare).
Last line: ``packet_out_us=... packet_in_us=... round_cpu_us=... round_wall_us=...``
(+ ``fib_client_cpu_share=...`` with --bmv2).
"""
from __future__ import annotations

import argparse
import os
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402

import google.protobuf                                          # noqa: E402
from google.protobuf.internal import api_implementation        # noqa: E402
from controller.switch.p4runtime.p4.v1 import p4runtime_pb2                                 # noqa: E402

from controller.switch import p4names as N                      # noqa: E402
from controller.switch.artifacts import BMV2_JSON, P4INFO       # noqa: E402
from controller.switch.p4rt import INSERT, SwitchConnection     # noqa: E402
from controller.switch.tables import Fib                        # noqa: E402
from controller.routing.route import Route                      # noqa: E402
from topologies.emu.child_processes import cpu_seconds                 # noqa: E402
from topologies.topo import NextHop                             # noqa: E402
from traffic.wire import names                                  # noqa: E402

FRAME = bytes(range(64)) * 2          # a 128-byte frame, the size of a hello


def per_op_us(fn, n: int) -> float:
    fn()
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1e6


def bench_messages(n: int) -> dict:
    sw = SwitchConnection("offline", "127.0.0.1:1", 1)
    sw.load_p4info(str(P4INFO))
    cpm = {c.preamble.name: c for c in sw.p4info.controller_packet_metadata}

    def packet_out():        # what packet_out builds, and what gRPC then serialises
        msg = p4runtime_pb2.StreamMessageRequest()
        msg.packet.payload = FRAME
        for md in cpm["packet_out"].metadata:
            msg.packet.metadata.add(metadata_id=md.id, value=b"\x02")
        return msg.SerializeToString()

    rep = p4runtime_pb2.StreamMessageResponse()
    rep.packet.payload = FRAME
    for md in cpm["packet_in"].metadata:
        rep.packet.metadata.add(metadata_id=md.id, value=b"\x03")
    wire = rep.SerializeToString()
    in_names = {md.id: md.name for md in cpm["packet_in"].metadata}

    def packet_in():         # what gRPC parses, and what packet_in decodes
        m = p4runtime_pb2.StreamMessageResponse.FromString(wire)
        return m.packet.payload, {in_names[x.metadata_id]: int.from_bytes(x.value, "big")
                                  for x in m.packet.metadata}

    fib = Fib(sw)
    hop = Route.via([NextHop(2, "02:00:00:00:00:02")])
    ents = [fib.entry(*names.prefix_key(f"/b/{i}"), hop) for i in range(2000)]

    def write_request():     # what write() builds for one 2,000-update batch
        req = p4runtime_pb2.WriteRequest()
        for e in ents:
            req.updates.add(type=INSERT).entity.table_entry.CopyFrom(e)
        return req.SerializeToString()

    return {"packet_out_us": per_op_us(packet_out, n), "packet_in_us": per_op_us(packet_in, n),
            "write_2000_ms": per_op_us(write_request, 20) / 1000}


# -- the echo server (child process) -----------------------------------------
def serve(port_file: str) -> int:
    from tests.support.fake_p4rt import FakeServer
    with FakeServer() as (fake, addr):
        def echo():
            while True:
                po = fake.packet_outs.get()
                fake.send_packet_in(po.payload, {m.metadata_id: m.value for m in po.metadata})
        threading.Thread(target=echo, daemon=True).start()
        Path(port_file).write_text(addr)
        sys.stdin.read()                  # until the parent closes our stdin
    return 0


def bench_round(n: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        port_file = Path(d) / "addr"
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)],
                                 stdin=subprocess.PIPE, env=os.environ.copy())
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the echo server did not start")
                time.sleep(0.05)
            addr = port_file.read_text()
            with SwitchConnection("echo", addr, 1).connect() as sw:
                sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
                for _ in range(200):      # warm-up
                    sw.packet_out(FRAME, egress_port=2)
                    assert sw.packet_in(timeout=5) is not None
                ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                for _ in range(n):
                    sw.packet_out(FRAME, egress_port=2)
                    pin = sw.packet_in(timeout=5)
                    if pin is None:
                        raise RuntimeError("a packet-in went missing")
                wall = time.perf_counter() - t0
                ru1 = resource.getrusage(resource.RUSAGE_SELF)
                assert pin.payload == FRAME
        finally:
            child.stdin.close()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"round_cpu_us": cpu / n * 1e6, "round_wall_us": wall / n * 1e6}


# -- batched FIB writes into BMv2: whose CPU ------------------------------------
def bench_bmv2(n: int) -> dict | str:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("simple_switch_grpc") is None:
        return "needs simple_switch_grpc"
    from topologies.emu.apps.bmv2_app import Bmv2Process
    from topologies.emu.veth import VethPairs
    with tempfile.TemporaryDirectory() as d, VethPairs(2, "pc") as veths, \
            Bmv2Process("p4rtcpu", 1, {1: veths.switch_side(1), 2: veths.switch_side(2)},
                        log_dir=d, log_level=None) as proc:
        with SwitchConnection("p4rtcpu", proc.grpc_addr, 1).connect() as sw:
            sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
            fib = Fib(sw)
            hop = Route.via([NextHop(2, "02:00:00:00:00:02")])
            ents = [fib.entry(*names.prefix_key(f"/b/{i}"), hop) for i in range(n)]
            pid = proc.proc.pid
            sw_cpu0, me0, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
            sw.write([(INSERT, e) for e in ents])
            wall = time.perf_counter() - t0
            me, sw_cpu = time.process_time() - me0, cpu_seconds(pid) - sw_cpu0
            assert len(sw.read_table(N.TABLE_FIB)) == n
    return {"fib_entries_per_s": n / wall, "fib_wall_ms": wall * 1e3,
            "fib_client_cpu_ms": me * 1e3, "fib_bmv2_cpu_ms": sw_cpu * 1e3}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--bmv2", type=int, default=0, metavar="N",
                    help="also write N FIB entries into one BMv2 (root)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    print(f"protobuf {google.protobuf.__version__} ({api_implementation.Type()}), "
          f"P4Runtime code from {Path(p4runtime_pb2.__file__).parent}")
    m = bench_messages(args.messages)
    print(f"  PacketOut build + serialise {m['packet_out_us']:.1f} us; PacketIn parse + decode "
          f"{m['packet_in_us']:.1f} us; a 2,000-update WriteRequest built + serialised "
          f"{m['write_2000_ms']:.1f} ms")
    r = bench_round(args.rounds)
    print(f"  packet-out -> packet-in round over gRPC ({args.rounds} rounds, echo server in "
          f"another process): {r['round_cpu_us']:.0f} us CPU in this process, "
          f"{r['round_wall_us']:.0f} us wall")
    last = (f"packet_out_us={m['packet_out_us']:.2f} packet_in_us={m['packet_in_us']:.2f} "
            f"write_2000_ms={m['write_2000_ms']:.2f} round_cpu_us={r['round_cpu_us']:.0f} "
            f"round_wall_us={r['round_wall_us']:.0f}")
    if args.bmv2:
        b = bench_bmv2(args.bmv2)
        if isinstance(b, str):
            print(f"  BMv2 part skipped: {b}")
        else:
            share = b["fib_client_cpu_ms"] / (b["fib_client_cpu_ms"] + b["fib_bmv2_cpu_ms"])
            print(f"  {args.bmv2} FIB entries batched into BMv2: {b['fib_entries_per_s']:.0f}/s, "
                  f"{b['fib_wall_ms']:.0f} ms wall; CPU: this process {b['fib_client_cpu_ms']:.0f} ms,"
                  f" BMv2 {b['fib_bmv2_cpu_ms']:.0f} ms")
            last += (f" fib_entries_per_s={b['fib_entries_per_s']:.0f}"
                     f" fib_client_cpu_share={share:.2f}")
    print(last + " " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
