#!/usr/bin/env python3
"""The draft's claim, measured: the service-mesh baseline beside DMSC (docs/mesh.md).

Two parts, both modes in one run:

* ``cost`` (no root, no switch): the control plane's update cost per endpoint
  change as the number of pods grows (16, 64, 128 pods on generated random
  topologies, a third of the switches SGs with one pod each; every pod serves
  ``/s<i>/1`` and a replica ``/any/<i>`` of the replicated service ``/any``).
  The change: one new replica ``/any/<n+1>`` announced by one pod.
  - mesh: the real control plane (controller/mesh/control_plane.py) with one
    subscriber per pod, SotW (Istio's default) and delta; per change the
    messages, their bytes (serialized protobuf, what gRPC would send), the
    control plane's CPU (the change, the fan-out and one serialization per
    stream, as gRPC does per stream) and the sidecars' (parse the push and
    diff it into HAProxy runtime commands, EndpointTable with a runtime that
    records the commands), summed over all sidecars;
  - DMSC: the real routing cores (controller/routing/router.py) of every
    switch in one process (tests/support/routing_sim.py), the same change
    accepted on the pod's SG: the LSA frames and acks flooded until the
    network is quiet, their bytes on the wire, and the routers' CPU for it
    (the same simulated interval without the change subtracted: hellos).
* ``calls`` (root, Mininet, BMv2): Figure 2 in each mode; calls across it
  (p50/p99, CPU per call of the whole path), a slowed instance (calls moved
  away: the time until no call reaches it), calls lost. Every load is the
  open loop of traffic/loadgen.py in both modes (calls on a schedule, each
  call's latency from its intended send time): DMSC frames from pod3's
  interface, or HTTP through pod3's sidecar (``--http``). The CPU per call
  counts the network's own processes only (every process this benchmark
  started: switches, agents or sidecars and HAProxy, pods, control planes,
  the load generator), the network's idle rate over the same time subtracted.

Last line: key=value, at least ``mesh_update_bytes_128 dmsc_update_bytes_128``
and, with the calls part, ``mesh_p50_ms dmsc_p50_ms mesh_shift_ms
dmsc_shift_ms calls_lost``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402

from controller.mesh.control_plane import MeshControlPlane        # noqa: E402
from controller.mesh.haproxy import clusters_of                    # noqa: E402
from controller.mesh.sidecar import EndpointTable                  # noqa: E402
from controller.proto import mesh_pb2 as pb                        # noqa: E402
from controller.spa.validate import AnnounceVerdict                # noqa: E402
from topologies.expected import served_prefixes                    # noqa: E402
from topologies.generate import random_graph                       # noqa: E402
from traffic.identity import Identity                              # noqa: E402
from traffic.wire import codec, defs                               # noqa: E402

CONTROL_TYPES = {defs.TYPE_LSA: "lsa", defs.TYPE_LSA_ACK: "lsa_ack"}


class RecordingRuntime:
    """HAProxy's runtime API as EndpointTable uses it, recording the commands:
    the cost model of a sidecar is the push's parse and diff plus these."""

    def __init__(self):
        self.commands = 0

    def add_server(self, *a, **k):
        self.commands += 3          # add server, enable health, set server state ready

    def del_server(self, *a, **k):
        self.commands += 3          # state maint, shutdown sessions, del server

    def set_address(self, *a, **k):
        self.commands += 1


def _valid(*_a):
    return AnnounceVerdict("valid", "ok", "benchmark")


def mesh_cost(topo, delta: bool) -> dict:
    """One new replica announced to a mesh of every pod in ``topo``."""
    plane = MeshControlPlane(_valid)
    ident = Identity.generate()
    pods = topo.pods()
    addr = {p: f"10.{i >> 8}.{i & 0xff}.1" for i, p in enumerate(pods, 1)}
    def register(p, inst):
        rep = plane.register(p, addr[p], 15006, ident.announcement(inst),
                             [ident.announcement(c) for c in clusters_of(inst) if c != inst])
        assert rep.ok, rep
    for p in pods:
        for inst in topo.instances(p):
            register(p, inst)
    subs, tables = [], []
    known = sorted(served_prefixes(topo)) + [f"/any/{len(pods) + 1}"]
    for p in pods:
        subs.append(plane.subscribe(p, delta))
        tables.append(EndpointTable(RecordingRuntime(), known))
    for sub, table in zip(subs, tables):               # the first, whole push
        table.apply(sub.queue.get_nowait())
    before = dict(plane.counters)
    t0 = time.process_time()
    register(pods[0], f"/any/{len(pods) + 1}")
    wire = [sub.queue.get_nowait().SerializeToString() for sub in subs]   # gRPC's per stream
    cp_cpu = time.process_time() - t0
    t0 = time.process_time()
    commands = 0
    for raw, table in zip(wire, tables):
        push = pb.Push()
        push.ParseFromString(raw)
        table.apply(push)
        commands += table.runtime.commands
    sc_cpu = time.process_time() - t0
    assert all(f"/any/{len(pods) + 1}" in t.endpoints()["/any"] for t in tables)
    return {"messages": plane.counters["pushes"] - before["pushes"],
            "bytes": plane.counters["push_bytes"] - before["push_bytes"],
            "wire_bytes": sum(len(w) for w in wire),
            "cp_cpu_ms": round(cp_cpu * 1000, 2), "sidecars_cpu_ms": round(sc_cpu * 1000, 2),
            "runtime_commands": commands}


def dmsc_cost(topo, settle_s: float = 2.0) -> dict:
    """The same change on DMSC: the pod's SG accepts the new replica's prefix;
    the LSA flooding it causes, counted on every link."""
    from tests.support.routing_sim import SimNet
    net = SimNet(topo)
    net.accept_all()
    net.run(3.0)
    if not all(r.synced for r in net.routers.values()):
        raise RuntimeError(f"{topo.name}: the routers did not converge")
    counts = {"messages": 0, "bytes": 0, "cpu": 0.0, "spf_runs": 0}

    def tap(_src, _port, frame):
        t = codec.decode(frame).type
        if t in CONTROL_TYPES:
            counts["messages"] += 1
            counts["bytes"] += len(frame)
        return frame
    net.taps.append(tap)
    # the routers' CPU for the change: LSA/ack frames handled and SPF runs, timed
    # where they happen (hellos, which run anyway, are not counted)
    for r in net.routers.values():
        def on_frame(port, raw, now, _orig=r.on_frame):
            if raw[14:15] and codec.decode(raw).type in CONTROL_TYPES:
                t0 = time.process_time()
                _orig(port, raw, now)
                counts["cpu"] += time.process_time() - t0
            else:
                _orig(port, raw, now)

        def run_spf(now, _orig=r._run_spf):
            t0 = time.process_time()
            _orig(now)
            counts["cpu"] += time.process_time() - t0
            counts["spf_runs"] += 1
        r.on_frame, r._run_spf = on_frame, run_spf
    pod = topo.pods()[0]
    sg = topo.gateway(pod)
    new = f"/any/{len(topo.pods()) + 1}"
    net.run(0.5)                                       # quiet before
    idle_counts = dict(counts)
    net.routers[sg].accept_prefix(new, topo.port(sg, pod), topo.mac(pod, 0), net.now)
    net.run(settle_s)
    missing = [n for n, fib in net.fibs().items() if new not in fib]
    return {"messages": counts["messages"] - idle_counts["messages"],
            "bytes": counts["bytes"] - idle_counts["bytes"],
            "routers_cpu_ms": round((counts["cpu"] - idle_counts["cpu"]) * 1000, 2),
            "per_router_cpu_ms": round((counts["cpu"] - idle_counts["cpu"]) * 1000
                                       / len(net.routers), 3),
            "spf_runs": counts["spf_runs"] - idle_counts["spf_runs"],
            "switches": len(topo.switches()), "links": topo.core_graph().number_of_edges(),
            "routers_without_route": len(missing)}


def cost_part(pod_counts) -> dict:
    out = {}
    for n in pod_counts:
        topo = random_graph(3 * n)
        assert len(topo.pods()) == n, (n, len(topo.pods()))
        row = {"sotw": mesh_cost(topo, False), "delta": mesh_cost(topo, True),
               "dmsc": dmsc_cost(topo)}
        out[n] = row
        print(f"{n:4d} pods ({row['dmsc']['switches']} switches, {row['dmsc']['links']} links): "
              f"mesh SotW {row['sotw']['messages']} msgs {row['sotw']['bytes']:,} B "
              f"cp {row['sotw']['cp_cpu_ms']} ms sidecars {row['sotw']['sidecars_cpu_ms']} ms | "
              f"delta {row['delta']['messages']} msgs {row['delta']['bytes']:,} B "
              f"cp {row['delta']['cp_cpu_ms']} ms sidecars {row['delta']['sidecars_cpu_ms']} ms | "
              f"DMSC {row['dmsc']['messages']} LSA/ack frames {row['dmsc']['bytes']:,} B "
              f"routers {row['dmsc']['routers_cpu_ms']} ms", flush=True)
    return out


FIG2 = Path(__file__).resolve().parent.parent / "topologies" / "fig2.yaml"


def _tree_cpu_s() -> float:
    """CPU seconds of every process this one started, directly or not (the
    switches, the pods, agents, sidecars, HAProxy, the control planes: the whole
    network), plus the children already waited for (the load client once it has
    exited). Other sessions' work on the machine does not count."""
    import resource
    parent, cpu = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d.name)] = int(f[1])
        cpu[int(d.name)] = (int(f[11]) + int(f[12])) / tick
    ours, frontier = set(), {os.getpid()}
    while frontier:
        ours |= frontier
        frontier = {p for p, pp in parent.items() if pp in frontier} - ours
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(cpu[p] for p in ours if p != os.getpid()) + ru.ru_utime + ru.ru_stime


def _load(net, mode, count, interval, records=None, timeout=1.0) -> dict:
    """pod3 (/D/3) calls the service /B, ``count`` calls one every ``interval``
    seconds with the open loop (traffic/loadgen.py): over HTTP through its
    sidecar (mesh) or as DMSC frames through its SG. The loadgen's summary."""
    from controller.mesh.haproxy import OUTBOUND_PORT
    t = net.topo
    via = ["--http", f"127.0.0.1:{OUTBOUND_PORT}"] if mode == "mesh" else \
        ["--iface", t.intf_name("pod3", 0), "--mac", t.mac("pod3", 0)]
    duration = count * interval
    args = ["-m", "traffic.loadgen", *via, "--src", "/D/3", "--rate", f"{1 / interval:g}",
            "--duration", f"{duration:g}", "--timeout", str(timeout),
            "--deadline", f"{duration + timeout + 5:g}"]
    if records:
        args += ["--records", str(records)]
    res = net.run_in("pod3", [*args, "/B", "echo"], timeout=duration + timeout + 60)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"traffic.loadgen failed: {res.stderr[-400:]}") from None


def _shift_ms(records, t_slow: float, slowed: str, slow_ms: float) -> float | None:
    """From the slowdown to the last call that still paid for it (answered by
    the slowed instance, or as slowly as it answers)."""
    late = [r["t"] for r in records if r["t"] >= t_slow and
            (r.get("responder") == slowed or (r["latency_ms"] or 1e9) >= slow_ms / 2)]
    return round((max(late) - t_slow) * 1000, 1) if late else 0.0


def run_mode(mode: str, run_root: Path, a) -> dict:
    from dmsc.converge import bring_up
    from topologies.emu.net import DmscNet
    from topologies.topo import Topology
    topo = Topology.load(FIG2)
    run_dir = run_root / mode
    if mode == "mesh":
        net = DmscNet(topo, run_dir)
        try:
            net.start()
            net.start_spa()
            net.start_mesh(server_timeout_ms=a.mesh_timeout_ms)
            net.mesh.wait_endpoints(net.mesh.all_endpoints(), timeout=30)
        except BaseException:
            net.stop()
            raise
    else:
        net = bring_up(DmscNet(topo, run_dir, probe_ms=100), timeout=60, mode=mode)
    out = {"mode": mode}
    lost = 0
    try:
        _load(net, mode, 50, 0.01)                                  # warm: connections, caches
        c0, t0 = _tree_cpu_s(), time.monotonic()
        time.sleep(a.calls * a.interval)                            # the same time, no calls
        idle_s = time.monotonic() - t0
        idle = _tree_cpu_s() - c0
        c0, t0 = _tree_cpu_s(), time.monotonic()
        lat = _load(net, mode, a.calls, a.interval)
        busy, busy_s = _tree_cpu_s() - c0, time.monotonic() - t0
        out["latency"] = lat
        lost += lat["failed"]
        extra = busy - idle * busy_s / idle_s          # the network's own idle rate removed
        out["cpu_ms_per_call"] = round(max(0.0, extra) * 1000 / max(1, lat["ok"]), 3)
        out["idle_cpu_share"] = round(idle / idle_s, 3)
        print(f"  {mode}: {lat['ok']} of {lat['scheduled']} calls (open loop, "
              f"traffic/loadgen.py), p50 {lat['p50_ms']} ms, "
              f"p99 {lat['p99_ms']} ms from the intended send time, "
              f"CPU {out['cpu_ms_per_call']} ms per call (every "
              f"process of the network and the client; the network's idle CPU, "
              f"{out['idle_cpu_share']:.2f} of a core, subtracted)", flush=True)
        # a slowed instance: where do pod3's calls to /B go now?
        first = _load(net, mode, 20, 0.01)
        slowed_inst = max(first["responders"], key=first["responders"].get)
        slowed_pod = topo.pod_of(slowed_inst)
        records = run_dir / "shift.jsonl"
        result = {}
        import threading
        th = threading.Thread(target=lambda: result.update(
            _load(net, mode, int(a.shift_s * 40), 0.025, records=records)))
        th.start()
        time.sleep(2.0)
        t_slow = time.monotonic()
        net.set_service_time(slowed_pod, a.slow_ms)
        th.join(a.shift_s * 4 + 60)
        net.set_service_time(slowed_pod, 0)
        recs = [json.loads(x) for x in records.read_text().splitlines()]
        out["shift_ms"] = _shift_ms(recs, t_slow, slowed_inst, a.slow_ms)
        out["shift_load"] = result
        lost += result.get("failed", 0)
        print(f"  {mode}: {slowed_inst} slowed by {a.slow_ms} ms: calls moved away in "
              f"{out['shift_ms']} ms; {result.get('failed')} of {result.get('scheduled')} lost; "
              f"answered by {result.get('responders')}", flush=True)
        # the control plane killed: do calls still work?
        if mode == "mesh":
            net.mesh.stop_control_plane(kill=True)
        else:
            net.stop_scsc(kill=True)
            net.stop_agents(kill=True)
        killed = _load(net, mode, 100, 0.01)
        out["control_killed"] = {"ok": killed["ok"], "scheduled": killed["scheduled"]}
        print(f"  {mode}: control plane killed: {killed['ok']} of {killed['scheduled']} calls "
              f"answered", flush=True)
        out["lost"] = lost
    finally:
        net.stop()
    return out


def calls_part(a) -> dict:
    import tempfile
    run_root = Path(a.run_dir or tempfile.mkdtemp(prefix="dmsc-mesh-bench-"))
    print(f"Calls on Figure 2, pod3 -> /B ({a.calls} calls at {1 / a.interval:.0f}/s, open "
          f"loop (traffic/loadgen.py) in both modes; a replica slowed by {a.slow_ms} ms):")
    return {mode: run_mode(mode, run_root, a) for mode in ("distributed", "mesh")}


def plot(cost: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ns = sorted(cost)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("sotw", "mesh, SotW pushes (Istio's default)"),
                       ("delta", "mesh, delta pushes"), ("dmsc", "DMSC, LSA flooding")):
        ax.plot(ns, [cost[n][key]["bytes"] for n in ns], marker="o", label=label)
    ax.set_xlabel("pods")
    ax.set_ylabel("bytes sent per endpoint change")
    ax.set_yscale("log")
    ax.set_title("Control-plane update cost of one new replica")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("cost", "calls", "all"), default="all")
    ap.add_argument("--pods", default="16,64,128", help="pod counts of the cost part")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--calls", type=int, default=1000, help="calls of the latency part")
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--slow-ms", type=float, default=200.0)
    ap.add_argument("--shift-s", type=float, default=10.0, help="the slowdown part's length")
    ap.add_argument("--mesh-timeout-ms", type=int, default=100,
                    help="the sidecars' per-try timeout (what makes a slow replica an error)")
    ap.add_argument("--run-dir")
    ap.add_argument("--plot", help="the update-cost plot (PNG)")
    a = ap.parse_args(argv)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    result: dict = {}
    kv = {}
    if a.part in ("cost", "all"):
        print("Update cost of one endpoint change (a new replica of /any):")
        cost = cost_part([int(x) for x in a.pods.split(",")])
        result["cost"] = cost
        for n, row in cost.items():
            kv[f"mesh_update_bytes_{n}"] = row["sotw"]["bytes"]
            kv[f"mesh_delta_update_bytes_{n}"] = row["delta"]["bytes"]
            kv[f"dmsc_update_bytes_{n}"] = row["dmsc"]["bytes"]
        if a.plot:
            plot(cost, Path(a.plot))
    if a.part in ("calls", "all"):
        calls = calls_part(a)
        result["calls"] = calls
        for mode, key in (("mesh", "mesh"), ("distributed", "dmsc")):
            c = calls[mode]
            kv[f"{key}_p50_ms"] = c["latency"]["p50_ms"]
            kv[f"{key}_p99_ms"] = c["latency"]["p99_ms"]
            kv[f"{key}_cpu_ms_per_call"] = c["cpu_ms_per_call"]
            kv[f"{key}_shift_ms"] = c["shift_ms"]
            kv[f"{key}_calls_ok_control_killed"] = c["control_killed"]["ok"]
        kv["calls_lost"] = sum(calls[m]["lost"] for m in calls)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))
    print(" ".join(f"{k}={v}" for k, v in kv.items()) + " " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
