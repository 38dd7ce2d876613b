"""The mesh baseline's IPv4 network: addresses, SPF routes and the switch tables.

Addressing (one address per pod, an IPv4 /24 per SG): the SG with device id
``d`` owns ``10.<d/256>.<d%256>.0/24``; its pod on port ``k`` is ``.k`` in it,
and ``.254`` is the gateway address its pods send through (no host or switch
answers ARP for it: each pod holds a permanent neighbour entry with the SG
port's MAC, the way the DMSC pods are told their gateway's MAC).

Routes come from shortest-path-first over the same switch graph as DMSC's FIB
(topologies.expected does the same for names): every switch routes each SG's
/24 to all its neighbours on an equal-cost shortest path (ECMP), and an SG
routes each of its own pods' /32 out of the pod's port, to the pod's MAC. The
/24s are the longest-prefix-match aggregation an IP network would use;
:class:`Ipv4Routes` writes them over P4Runtime (p4src/mesh/ipv4.p4), diffing
against what the switch holds, like controller.switch.tables.Fib.
"""
from __future__ import annotations

import ipaddress

import networkx as nx

from controller.switch.p4rt import DELETE, INSERT, MODIFY, SwitchConnection
from controller.switch.tables import mac_int, mac_str
from topologies.topo import NextHop, Topology

# P4Info names of p4src/mesh/ipv4.p4 (tests/unit/test_mesh_routes.py checks them
# against the compiled P4Info).
TABLE_ROUTES = "MeshIngress.routes"
MATCH_DST_ADDR = "dst_addr"
ACTION_SET_NEXT_HOP = "MeshIngress.set_next_hop"
PARAM_PORT = "port"
PARAM_DMAC = "dmac"
TABLE_PORT_MAC = "MeshEgress.port_mac"
MATCH_PORT = "port"
ACTION_SET_SRC_MAC = "MeshEgress.set_src_mac"
PARAM_SMAC = "smac"
COUNTER_DROP_REASONS = "MeshIngress.drop_reasons"
DROP_REASONS = {0: "not_ipv4", 1: "ttl", 2: "no_route"}

GATEWAY_HOST = 254


def sg_subnet(topo: Topology, sg: str) -> ipaddress.IPv4Network:
    d = topo.device_id(sg)
    if not 0 <= d < 65536:
        raise ValueError(f"{sg}: device id {d} does not fit the 10.x.y.0/24 plan")
    return ipaddress.IPv4Network(f"10.{d >> 8}.{d & 0xff}.0/24")


def pod_address(topo: Topology, pod: str) -> ipaddress.IPv4Address:
    sg = topo.gateway(pod)
    k = topo.port(sg, pod)
    if not 1 <= k < GATEWAY_HOST:
        raise ValueError(f"{pod}: port {k} on {sg} does not fit the /24 plan")
    return sg_subnet(topo, sg).network_address + k


def gateway_address(topo: Topology, pod: str) -> ipaddress.IPv4Address:
    return sg_subnet(topo, topo.gateway(pod)).network_address + GATEWAY_HOST


def gateway_mac(topo: Topology, pod: str) -> str:
    """The MAC the pod sends everything to: its SG port's."""
    sg = topo.gateway(pod)
    return topo.mac(sg, topo.port(sg, pod))


def pod_of_address(topo: Topology, addr) -> str | None:
    addr = ipaddress.IPv4Address(addr)
    return next((p for p in topo.pods() if pod_address(topo, p) == addr), None)


def reference_routes(topo: Topology, core: nx.Graph | None = None
                     ) -> dict[str, dict[str, frozenset[NextHop]]]:
    """{switch: {"a.b.c.d/len": next hops}}: every SG's /24 on every switch that
    reaches it (ECMP over the equal-cost shortest paths), and each SG's own
    pods as /32s out of their ports. ``core`` overrides the switch graph (a
    failed link removed)."""
    g = topo.core_graph() if core is None else core
    routes: dict[str, dict[str, frozenset[NextHop]]] = {s: {} for s in g.nodes}
    for sg in (s for s in g.nodes if topo.kind(s) == "sg"):
        pods = [p for p in topo.graph.neighbors(sg) if topo.kind(p) == "pod"]
        if not pods:
            continue
        for p in pods:
            routes[sg][f"{pod_address(topo, p)}/32"] = frozenset(
                {NextHop(topo.port(sg, p), topo.mac(p, 0))})
        dist = nx.single_source_dijkstra_path_length(g, sg, weight="cost")
        for s in g.nodes:
            if s == sg or s not in dist:
                continue            # the origin itself, or partitioned away
            hops = frozenset(NextHop(topo.port(s, nb), topo.mac(nb, topo.port(nb, s)))
                             for nb in g.neighbors(s)
                             if nb in dist and g.edges[s, nb]["cost"] + dist[nb] == dist[s])
            routes[s][str(sg_subnet(topo, sg))] = hops
    return routes


def next_switch_path(topo: Topology, routes, src_pod: str, dst_pod: str,
                     max_hops: int = 64) -> list[str]:
    """Follow ``routes`` by longest prefix from ``src_pod``'s SG to ``dst_pod``
    (the lowest next hop at each ECMP split): the nodes visited. For tests."""
    dst = pod_address(topo, dst_pod)
    node, visited = topo.gateway(src_pod), []
    for _ in range(max_hops):
        visited.append(node)
        best = max(((ipaddress.IPv4Network(p), h) for p, h in routes[node].items()
                    if dst in ipaddress.IPv4Network(p)),
                   key=lambda ph: ph[0].prefixlen, default=None)
        if best is None:
            return visited
        nb = topo.neighbour_on(node, min(best[1]).port)
        if topo.kind(nb) == "pod":
            return visited + [nb]
        node = nb
    raise RuntimeError(f"forwarding loop towards {dst_pod}: {visited}")


class Ipv4Routes:
    """One switch's IPv4 routes (p4src/mesh/ipv4.p4), read and written through
    its adapter: ``{"a.b.c.d/len": frozenset(NextHop)}``, one entry per prefix
    with a one-shot action-selector set of one member per next hop."""

    def __init__(self, sw: SwitchConnection):
        self.sw = sw

    def port_macs(self, macs: dict[int, str]) -> list:
        """INSERTs of every port's source MAC (egress rewrite)."""
        return [(INSERT, self.sw.table_entry(TABLE_PORT_MAC, {MATCH_PORT: port},
                                             action=ACTION_SET_SRC_MAC,
                                             params={PARAM_SMAC: mac_int(mac)}))
                for port, mac in sorted(macs.items())]

    def entry(self, prefix: str, hops):
        net = ipaddress.IPv4Network(prefix)
        if not hops:
            raise ValueError(f"route for {prefix} has no next hop")
        aset = [(ACTION_SET_NEXT_HOP, {PARAM_PORT: h.port, PARAM_DMAC: mac_int(h.mac)}, 1)
                for h in sorted(hops)]
        return self.sw.table_entry(TABLE_ROUTES,
                                   {MATCH_DST_ADDR: (int(net.network_address), net.prefixlen)},
                                   action_set=aset)

    def read(self) -> dict[str, frozenset[NextHop]]:
        out = {}
        for te in self.sw.read_table(TABLE_ROUTES):
            d = self.sw.decode_entry(te)
            value, plen = d["match"].get(MATCH_DST_ADDR, (0, 0))
            out[str(ipaddress.IPv4Network((value, plen)))] = frozenset(
                NextHop(params[PARAM_PORT], mac_str(params[PARAM_DMAC]))
                for _action, params, _w in d.get("action_set", []))
        return out

    def diff(self, current: dict, desired: dict) -> list:
        ups = [(INSERT, self.entry(p, h)) for p, h in sorted(desired.items()) if p not in current]
        ups += [(MODIFY, self.entry(p, h)) for p, h in sorted(desired.items())
                if p in current and current[p] != h]
        ups += [(DELETE, self.entry(p, h)) for p, h in sorted(current.items()) if p not in desired]
        return ups

    def sync(self, desired: dict[str, frozenset[NextHop]]) -> dict[str, int]:
        """Make the switch's routes equal ``desired``; the counts written."""
        ups = self.diff(self.read(), desired)
        self.sw.write(ups)
        names = {INSERT: "insert", MODIFY: "modify", DELETE: "delete"}
        counts = {"insert": 0, "modify": 0, "delete": 0}
        for op, _ in ups:
            counts[names[op]] += 1
        return counts

    def drops(self) -> dict[str, int]:
        cells = self.sw.read_counter(COUNTER_DROP_REASONS)
        return {name: cells.get(i, (0, 0))[0] for i, name in DROP_REASONS.items()}
