"""``dmsc scsc``, ``dmsc policies SWITCH``, ``dmsc degrade POD``: the SCSC's
telemetry and decisions, the policies in force on a switch, and a pod made
slower (a degraded instance for the SCSC to steer around).
"""
from __future__ import annotations

import grpc
from rich.table import Table

from controller.agent.admin_client import AdminClient
from controller.proto import scsc_pb2 as scsc_pb
from controller.proto import scsc_pb2_grpc as scsc_grpc
from dmsc.commands import console
from dmsc.commands.running_network import load_net_state, switch_info
from topologies.emu import pod_control


def cmd_scsc(args) -> int:
    state = load_net_state(args.run_dir)
    if not state.get("scsc"):
        raise RuntimeError("this network runs without an SCSC (dmsc up --probe-ms 100)")
    try:
        with grpc.insecure_channel(state["scsc"]) as ch:
            v = scsc_grpc.ScscStub(ch).View(scsc_pb.Empty(), timeout=3)
    except grpc.RpcError as exc:
        raise RuntimeError(f"SCSC at {state['scsc']}: {exc.code().name}") from None
    console.print(f"SCSC at {state['scsc']}: routers (from the LSDB) {', '.join(v.routers)}; "
                  f"thresholds {dict(v.thresholds)}")
    t = Table(title="telemetry (each SG's probes)")
    for col in ("SG", "instance", "delay ms", "jitter ms", "loss", "bandwidth Mbit/s",
                "path (switch ids)", "age s", "violates"):
        t.add_column(col)
    for x in v.telemetry:
        m = x.path
        t.add_row(x.sg, m.instance, f"{m.delay_ms:.1f}", f"{m.jitter_ms:.1f}", f"{m.loss:.0%}",
                  f"{m.bandwidth_mbps:.1f}" if m.bandwidth_mbps else "?",
                  " ".join(map(str, m.path)), f"{x.age_s:.1f}", x.violation or "")
    console.print(t)
    d = Table(title="decisions")
    for col in ("SG", "service", "SPF default", "steered to", "path", "why"):
        d.add_column(col)
    for x in v.decisions:
        d.add_row(x.sg, x.service, x.default_instance, x.chosen or "-", " ".join(x.path), x.why)
    console.print(d)
    console.print({k: c for k, c in sorted(v.counters.items())})
    return 0


def cmd_policies(args) -> int:
    _state, info = switch_info(args)
    if not info.get("admin_addr"):
        raise RuntimeError("this network runs without agents")
    with AdminClient(info["admin_addr"]) as c:
        rep = c.policies()
    t = Table(title=f"{args.switch}: SCSC policies ({rep.scsc or 'none'}, version {rep.version})")
    for col in ("service", "from", "port", "to MAC", "instance", "expires in s", "packets"):
        t.add_column(col)
    for p in rep.policies:
        t.add_row(p.dst, p.src, str(p.port), p.mac, p.instance, f"{p.expires_in_s:.1f}",
                  str(p.packets))
    console.print(t)
    return 0


def cmd_degrade(args) -> int:
    if not pod_control.pods_dir(args.run_dir).is_dir():
        raise RuntimeError(f"no running pods in {args.run_dir}")
    pod_control.update_control(args.run_dir, args.pod, service_ms=args.service_ms)
    console.print(f"{args.pod}: service time {args.service_ms:g} ms")
    return 0
