"""Commands that need no running network: ``dmsc topo FILE`` (a topology as
nodes, links and expected FIBs), ``dmsc check`` (what this machine has and
lacks), ``dmsc pcap FILE`` (a capture decoded by the DMSC dissector).
"""
from __future__ import annotations

from pathlib import Path

from rich.table import Table

from dmsc import pcap
from dmsc.commands import console
from dmsc.prerequisites import missing_prerequisites
from topologies.emu.linkcaps import netem_available
from topologies.expected import reference_fibs
from topologies.generate import from_spec
from topologies.topo import Topology, TopologyError
from traffic.wire import names


def load_topology(arg: str):
    """A topology file, or a generator spec such as ``ring:16`` or ``grid:4x4``."""
    if not Path(arg).exists() and ":" in arg:
        try:
            return from_spec(arg)
        except ValueError as exc:
            raise TopologyError(f"{arg}: no such file, and not a generator spec "
                                f"(ring:16, grid:4x4, fat-tree:4, line:8, random:32, "
                                f"fig2:pods=64,instances=1000,services=100): {exc}") \
                from None
    return Topology.load(arg)


def cmd_topo(args) -> int:
    topo = load_topology(args.file)
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
    fibs = reference_fibs(topo)
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


def cmd_check(args) -> int:
    missing = missing_prerequisites()
    console.print(f"netem (link delay/jitter): {'yes' if netem_available() else 'no (htb/tbf only)'}")
    if missing:
        for m in missing:
            console.print(f"[red]missing[/red] {m}")
        return 1
    console.print("[green]all prerequisites present[/green]")
    return 0


def cmd_pcap(args) -> int:
    return pcap.show(args.file, args.filter, verbose=args.verbose)
