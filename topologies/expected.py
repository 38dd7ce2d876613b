"""What shortest-path-first over a topology says every switch's FIB must hold.

This is the independent computation the tests compare running switches
against, and (until the routing agents exist) the source of the static FIBs
the demo writes. For each routed prefix, the origins are the SGs whose pods
serve it; a switch forwards to every neighbour on an equal-cost shortest path
to the *nearest* origin (ECMP and anycast in one rule), and an origin SG
delivers to its pod's port. Every SG's own name (``/dmsc/sw/<sg>``) is routed
too, to that SG, where it is delivered to the CPU port (its agent: probe
replies come back that way).
"""
from __future__ import annotations

import networkx as nx

from traffic.wire import names
from topologies.topo import CPU_PORT, NextHop, Topology


def served_prefixes(topo: Topology) -> dict[str, set[str]]:
    """{prefix: {pods}}: every instance name and the service prefix above it
    (``/A/1`` also makes ``/A``), as the pods will announce them."""
    out: dict[str, set[str]] = {}
    for pod in topo.pods():
        for inst in topo.instances(pod):
            parts = names.components(inst)
            for depth in range(1, len(parts) + 1):
                out.setdefault("/" + "/".join(parts[:depth]), set()).add(pod)
    return out


def reference_fibs(topo: Topology, prefixes: dict[str, set[str]] | None = None,
                  core: nx.Graph | None = None) -> dict[str, dict[str, frozenset[NextHop]]]:
    """{switch: {prefix: next hops}} for every switch that can reach the prefix.

    ``core`` overrides the switch graph (e.g. with a failed link removed).
    """
    prefixes = served_prefixes(topo) if prefixes is None else prefixes
    g = topo.core_graph() if core is None else core
    fibs: dict[str, dict[str, frozenset[NextHop]]] = {s: {} for s in g.nodes}
    origins_of = {p: {topo.gateway(pod) for pod in pods} for p, pods in prefixes.items()}
    origins_of.update({names.switch_name(s): {s} for s in g.nodes if topo.kind(s) == "sg"})
    for prefix, origins in sorted(origins_of.items()):
        pods = prefixes.get(prefix, set())
        origins = origins & set(g.nodes)
        if not origins:
            continue
        dist = nx.multi_source_dijkstra_path_length(g, origins, weight="cost")
        for s in g.nodes:
            if s not in dist:
                continue          # partitioned away from every origin
            if s in origins and names.is_reserved(prefix):
                hops = {NextHop(CPU_PORT, "")}            # to the switch's agent
            elif s in origins:
                hops = {NextHop(topo.port(s, p), topo.mac(p, 0))
                        for p in pods if topo.gateway(p) == s}
            else:
                hops = {NextHop(topo.port(s, nb), topo.mac(nb, topo.port(nb, s)))
                        for nb in g.neighbors(s)
                        if nb in dist and g.edges[s, nb]["cost"] + dist[nb] == dist[s]}
            fibs[s][prefix] = frozenset(hops)
    return fibs


def path(topo: Topology, fibs, src_pod: str, dst_name: str, max_hops: int = 64) -> list[str]:
    """Follow the FIBs from ``src_pod``'s SG towards ``dst_name`` (first next
    hop at each ECMP split); returns the switches visited. For tests."""
    key = names.name_key(dst_name)
    node = topo.gateway(src_pod)
    visited = []
    for _ in range(max_hops):
        visited.append(node)
        best = None
        for prefix, hops in fibs[node].items():
            pkey, plen = names.prefix_key(prefix)
            mask = ((1 << plen) - 1) << (names.KEY_BITS - plen) if plen else 0
            if key & mask == pkey and (best is None or plen > best[0]):
                best = (plen, hops)
        if best is None or not best[1]:
            return visited
        nh = min(best[1])
        nb = topo.neighbour_on(node, nh.port)
        if topo.kind(nb) == "pod":
            visited.append(nb)
            return visited
        node = nb
    raise RuntimeError(f"forwarding loop towards {dst_name}: {visited}")
