"""``dmsc``: the testbed's command line.

    dmsc demo                 Figure 2 on BMv2 in Mininet: a call by name, A/1 -> B/4
    dmsc topo FILE            a topology file as nodes, links and expected FIBs
    dmsc shell-cmd ADDR ID    the p4runtime-shell command line for one switch
    dmsc check                what this machine has and lacks for the testbed

Library code raises; this entry point is the only place that prints and exits.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from traffic import names

console = Console()
ROOT = Path(__file__).resolve().parent.parent


def shell_cmd(grpc_addr: str, device_id: int) -> str:
    """p4runtime-shell on a running switch. No --config: the shell reads the
    P4Info from the switch instead of pushing a pipeline (which would wipe it).
    Election id 0,2 makes the shell primary so it can also write."""
    return (f"{sys.executable} -m p4runtime_sh --grpc-addr {grpc_addr} "
            f"--device-id {device_id} --election-id 0,2")


def missing_prerequisites(need_root: bool = True) -> list[str]:
    missing = []
    if need_root and os.geteuid() != 0:
        missing.append("root (Mininet creates namespaces and veths): run with sudo")
    if shutil.which("simple_switch_grpc") is None:
        missing.append("simple_switch_grpc (BMv2 with P4Runtime): see README, 'Setup'")
    if shutil.which("mnexec") is None:
        missing.append("mnexec (Debian/Ubuntu package 'mininet')")
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        missing.append("the mininet Python package (package 'mininet'; the venv needs "
                       "--system-site-packages)")
    return missing


def cmd_check(args) -> int:
    missing = missing_prerequisites()
    from topologies.linkcaps import netem_available
    console.print(f"netem (link delay/jitter): {'yes' if netem_available() else 'no (htb/tbf only)'}")
    if missing:
        for m in missing:
            console.print(f"[red]missing[/red] {m}")
        return 1
    console.print("[green]all prerequisites present[/green]")
    return 0


def cmd_topo(args) -> int:
    from topologies import routes
    from topologies.topo import Topology
    topo = Topology.load(args.file)
    t = Table(title=f"{topo.name}: nodes")
    for col in ("node", "kind", "id", "instances / ports"):
        t.add_column(col)
    for n in topo.switches() + topo.pods():
        a = topo.graph.nodes[n]
        detail = (", ".join(topo.instances(n)) if a["kind"] == "pod" else
                  ", ".join(f"{topo.port(n, nb)}->{nb}" for nb in
                            sorted(topo.graph.neighbors(n), key=lambda x: topo.port(n, x))))
        t.add_row(n, a["kind"], str(a.get("id", "")), detail)
    console.print(t)
    fibs = routes.expected_fibs(topo)
    f = Table(title="expected FIBs (SPF over the topology)")
    for col in ("switch", "prefix", "key", "next hops"):
        f.add_column(col)
    for s in topo.switches():
        for p, hops in sorted(fibs[s].items()):
            f.add_row(s, p, names.format_key(*names.prefix_key(p)),
                      ", ".join(f"port {h.port} ({topo.neighbour_on(s, h.port)})"
                                for h in sorted(hops)))
    console.print(f)
    return 0


def cmd_shell_cmd(args) -> int:
    print(shell_cmd(args.grpc_addr, args.device_id))
    return 0


def _call_until(net, pod, src, dst, method, body, deadline_s):
    """Call through the pod's namespace until it answers or the deadline passes
    (the serving pod may still be starting)."""
    deadline = time.monotonic() + deadline_s
    while True:
        res = net.run_in(pod, ["-m", "traffic.client", "--iface", net.topo.intf_name(pod, 0),
                               "--src", src, "--mac", net.topo.mac(pod, 0),
                               "--timeout", "1.0", dst, method, json.dumps(body)])
        out = json.loads(res.stdout.strip() or '{"error": "no output: %s"}' % res.stderr[-200:])
        if "error" not in out or time.monotonic() > deadline:
            return out


def cmd_demo(args) -> int:
    missing = missing_prerequisites()
    if missing:
        for m in missing:
            console.print(f"[red]cannot run the demo, missing:[/red] {m}")
        return 2
    from controller.fib import Fib
    from controller.static import program_static
    from topologies.net import DmscNet
    from topologies.topo import Topology

    topo = Topology.load(args.topo)
    src, dst = names.normalize(args.src), names.normalize(args.dst)
    src_pod = topo.pod_of(src)
    run_dir = Path(args.run_dir)
    console.rule(f"DMSC demo: {topo.name} on BMv2, {len(topo.switches())} switches, "
                 f"{len(topo.pods())} pods")
    net = DmscNet(topo, run_dir, pcap=args.pcap)
    conns = {}
    try:
        t0 = time.monotonic()
        net.start()
        console.print(f"network up in {time.monotonic() - t0:.1f}s (logs: {run_dir})")
        for w in net.warnings:
            console.print(f"[yellow]warning:[/yellow] {w}")
        t0 = time.monotonic()
        conns = program_static(net)
        console.print(f"pipelines, port roles and static SPF FIBs written in "
                      f"{time.monotonic() - t0:.1f}s")
        for pod in topo.pods():
            net.start_pod(pod)
        before = {s: Fib(c).counters() for s, c in conns.items()}
        out = _call_until(net, src_pod, src, dst, args.method, {"hello": "DMSC"}, 15.0)
        if "error" in out:
            console.print(f"[red]call {src} -> {dst} failed:[/red] {out['error']}")
            return 1
        console.print(f"[green]{src} called {dst}.{args.method}[/green]: result "
                      f"{out['result']} from {out['from']}, round trip {out['rtt_ms']} ms")
        table = Table(title="frames counted by each switch's FIB during the call")
        for col in ("switch", "prefix", "packets"):
            table.add_column(col)
        idx = names.NameIndex([src, dst])
        for s, c in conns.items():
            after = Fib(c).counters()
            for k, (pk, _b) in sorted(after.items()):
                delta = pk - before[s].get(k, (0, 0))[0]
                if delta:
                    table.add_row(s, idx.lookup(*k), str(delta))
        console.print(table)
        console.print("inspect a switch's tables with p4runtime-shell while it runs, e.g.:")
        for s in topo.switches()[:2]:
            sw = net.switch(s)
            console.print(f"  {s}: {shell_cmd(sw.grpc_addr, sw.device_id)}")
        if args.keep:
            from mininet.cli import CLI
            console.print("Mininet CLI: 'exit' tears the network down")
            CLI(net.mn)
        return 0
    finally:
        for c in conns.values():
            c.close()
        net.stop()
        console.print("network stopped and cleaned up")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="dmsc", description="DMSC testbed")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="run the Figure 2 demo (root)")
    d.add_argument("--topo", default=str(ROOT / "topologies" / "fig2.yaml"))
    d.add_argument("--src", default="/A/1")
    d.add_argument("--dst", default="/B/4")
    d.add_argument("--method", default="echo")
    d.add_argument("--run-dir", default=str(ROOT / "runs" / "demo"))
    d.add_argument("--pcap", action="store_true", help="write per-interface pcaps")
    d.add_argument("--keep", action="store_true", help="drop into the Mininet CLI")
    d.set_defaults(fn=cmd_demo)
    t = sub.add_parser("topo", help="show a topology file and its expected FIBs")
    t.add_argument("file")
    t.set_defaults(fn=cmd_topo)
    s = sub.add_parser("shell-cmd", help="p4runtime-shell command for a switch")
    s.add_argument("grpc_addr")
    s.add_argument("device_id", type=int)
    s.set_defaults(fn=cmd_shell_cmd)
    c = sub.add_parser("check", help="check this machine's prerequisites")
    c.set_defaults(fn=cmd_check)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:   # entry point: one clear line, not a traceback
        from controller.p4rt import SwitchError
        from topologies.topo import TopologyError
        if isinstance(exc, (SwitchError, TopologyError, names.InvalidName, RuntimeError)):
            console.print(f"[red]dmsc {args.cmd}: {exc}[/red]")
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
