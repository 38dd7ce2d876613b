"""Program switches from the topology alone: pipeline, base tables, static FIB.

Until the routing agents (type-2 signaling) exist, the demo and the
whole-network tests use this: every FIB is what SPF over the topology graph
says (topologies.routes), written through the adapter. The same
``setup_switch`` is what an agent does first on its own switch.
"""
from __future__ import annotations

from controller.switch.tables import Fib, SourceGuard, base_entries, copp_updates
from controller.routing.route import Route
from controller.switch.artifacts import BMV2_JSON, P4INFO
from controller.switch.p4rt import SwitchConnection
from topologies.expected import reference_fibs, served_prefixes
from topologies.topo import Topology


def switch_ports(topo: Topology, name: str) -> dict[int, tuple[str, str]]:
    """{port: (role, mac)} for one switch, from the topology."""
    out = {}
    for nb in topo.graph.neighbors(name):
        p = topo.port(name, nb)
        out[p] = (topo.port_role(name, p), topo.mac(name, p))
    return out


def setup_switch(sw: SwitchConnection, topo: Topology, name: str, *,
                 p4info=P4INFO, bmv2_json=BMV2_JSON) -> None:
    sw.set_pipeline(str(p4info), str(bmv2_json))
    ports = switch_ports(topo, name)
    sw.write(base_entries(sw, topo.device_id(name), ports))
    sw.write(copp_updates(sw, topo.copp, [p for p, (role, _m) in ports.items() if role == "pod"]))


def static_sources(topo: Topology, name: str) -> set[tuple[int, int, int]]:
    """The source-name table of SG ``name`` with no SPA: each pod port may
    speak as the names the file gives its pod (instances and the prefixes above)."""
    return SourceGuard.wanted((prefix, topo.port(name, pod))
                              for prefix, pods in served_prefixes(topo).items()
                              for pod in pods if topo.gateway(pod) == name)


def static_routes(topo: Topology, core=None) -> dict[str, dict[str, Route]]:
    return {s: {p: Route.via(h) for p, h in fib.items() if h}
            for s, fib in reference_fibs(topo, core=core).items()}


def program_static(net) -> dict[str, SwitchConnection]:
    """Push pipeline, base tables and static FIBs to every switch of a running
    DmscNet; returns the connected adapters (caller closes them)."""
    topo = net.topo
    conns = {}
    try:
        wanted = static_routes(topo)
        for name in topo.switches():
            sw = net.p4rt(name)
            conns[name] = sw
            setup_switch(sw, topo, name)
            Fib(sw).sync(wanted[name])
            guard = SourceGuard(sw)
            sw.write(guard.diff(set(), static_sources(topo, name)))
    except BaseException:
        for sw in conns.values():
            sw.close()
        raise
    return conns
