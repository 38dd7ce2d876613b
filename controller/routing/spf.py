"""SPF over the LSDB: the networkx graph, and the RIB it gives one router.

An adjacency counts only when both ends report it (the two-way check of
OSPF/IS-IS), so a stale LSA of a dead router cannot attract traffic. One
Dijkstra from the computing router gives distances and, through the
predecessor DAG, the set of equal-cost first hops to every router; a prefix
announced by several SGs goes to the nearest ones and spreads over all their
equal-cost first hops (anycast + ECMP in one rule).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from controller.routing.lsdb import Lsdb
from traffic.wire import names

LOCAL = "local"   # next hop "router" for a prefix behind this SG's own pod port


@dataclass(frozen=True, order=True)
class RibHop:
    neighbor: str        # router name, or LOCAL
    port: int


@dataclass
class RibEntry:
    prefix: str
    cost: float
    origins: tuple[str, ...]
    hops: frozenset[RibHop] = field(default_factory=frozenset)


class _GraphState:
    """SPF's graph of one LSDB and the per-origin records it was built from; and
    what :func:`rib` needs to recompute only what changed (IS-IS's partial route
    computation): which prefixes changed and whether the topology did since the
    last RIB, and that RIB's shortest paths."""

    def __init__(self):
        self.g = nx.Graph()
        self.adj: dict[str, dict[str, tuple[int, int]]] = {}   # origin -> nb -> (cost, port)
        self.origins_of: dict[str, set[str]] = {}    # prefix -> the routers announcing it
        self.topo_changed = True                     # routers, edges, kinds, overload
        self.changed_prefixes: set[str] = set()      # announced by other routers, or ports
        self.rib: dict[str, RibEntry] | None = None  # the last RIB, and its inputs
        self.me: str | None = None
        self.dist: dict[str, float] = {}
        self.hops: dict[str, frozenset[str]] = {}
        self.local: dict[str, int] = {}
        self.refused: dict[str, str] = {}


def graph(lsdb: Lsdb) -> nx.Graph:
    """Routers and two-way adjacencies; node attribute ``prefixes`` maps each
    prefix an SG announces to the port it sits behind.

    Built once, then kept up to date: only the origins whose LSAs changed
    since the last call (``lsdb.changed``) have their node and edges redone,
    so an SPF after one new LSA does not rebuild a 1,000-router graph. The
    graph belongs to the LSDB: read it, do not modify it."""
    st = lsdb.spf_state
    if st is None:
        st = lsdb.spf_state = _GraphState()
        dirty = {o for o, _f in lsdb.entries}
    else:
        dirty = lsdb.changed
    lsdb.changed = set()
    if not dirty:
        return st.g
    kinds: dict[str, str] = {}
    adj: dict[str, dict[str, tuple[int, int]]] = {}
    prefixes: dict[str, dict[str, int]] = {}
    overload: dict[str, bool] = {}
    for (origin, _f), e in lsdb.entries.items():
        if origin not in dirty or e.purged:
            continue
        _o, kind, adjacencies, prefix_ports, over = e.view
        kinds[origin] = kind
        overload[origin] = overload.get(origin, False) or over
        adj.setdefault(origin, {}).update((n, (c, p)) for n, c, p in adjacencies)
        prefixes.setdefault(origin, {}).update(prefix_ports)
    g = st.g
    for origin in dirty:
        old = g.nodes[origin] if origin in g else None
        old_prefixes = old["prefixes"] if old is not None else {}
        new_prefixes = prefixes.get(origin, {}) if origin in kinds else {}
        for p in old_prefixes.keys() - new_prefixes.keys():
            st.changed_prefixes.add(p)
            rest = st.origins_of.get(p)
            if rest is not None:
                rest.discard(origin)
                if not rest:
                    del st.origins_of[p]
        for p, port in new_prefixes.items():
            if old_prefixes.get(p) != port:
                st.changed_prefixes.add(p)
                st.origins_of.setdefault(p, set()).add(origin)
        if origin not in kinds:                 # no live LSA left: the router is gone
            st.adj.pop(origin, None)
            if origin in g:
                g.remove_node(origin)
                st.topo_changed = True
            continue
        if old is None or old["kind"] != kinds[origin] or old["overload"] != overload[origin] \
                or st.adj.get(origin) != adj[origin]:
            st.topo_changed = True
        st.adj[origin] = adj[origin]
        g.add_node(origin, kind=kinds[origin], prefixes=prefixes[origin],
                   overload=overload[origin])
        g.remove_edges_from(list(g.edges(origin)))
    for origin in dirty:
        for v, (cost, port) in st.adj.get(origin, {}).items():
            back = st.adj.get(v, {}).get(origin)
            if back is None:
                continue                        # one-way: not (yet) an adjacency
            g.add_edge(origin, v, cost=max(cost, back[0]), ports={origin: port, v: back[1]})
    return g


def first_hops(g: nx.Graph, me: str) -> tuple[dict[str, float], dict[str, frozenset[str]]]:
    """Distances from ``me`` and, per router, the neighbours of ``me`` that
    start an equal-cost shortest path to it."""
    over = [n for n, o in g.nodes(data="overload") if o and n != me]
    if over:              # an overloaded router is a destination, never a transit
        h = nx.DiGraph(g)
        h.remove_edges_from([(n, nb) for n in over for nb in g.neighbors(n)])
        g = h
    pred, dist = nx.dijkstra_predecessor_and_distance(g, me, weight="cost")
    hops: dict[str, frozenset[str]] = {me: frozenset()}
    for node in sorted(dist, key=dist.get):
        if node == me:
            continue
        acc = set()
        for p in pred[node]:
            acc |= {node} if p == me else hops[p]
        hops[node] = frozenset(acc)
    return dist, hops


class KeyClaims:
    """Which prefix text holds each switch key in this router's RIB: first come.

    The SPA refuses a name whose key another name has; this is the second line,
    for an SG that let one through (misconfigured, compromised, or an SPA with a
    different registry). Two texts with one key would share one FIB entry and one
    of them would take the other's calls, so the prefix that arrives second is
    kept out of the RIB (counted and logged with both names by the caller) until
    the first is gone. Prefixes this router accepted itself come first.
    """

    def __init__(self):
        self.guard = names.KeyGuard()
        self.refused: dict[str, str] = {}          # prefix -> the name holding its key
        self.new: dict[str, str] = {}              # refused by the last settle, not before

    def settle(self, g: nx.Graph, local_prefixes=()) -> dict[str, str]:
        """Update from the prefixes present now; returns (and keeps in ``new``)
        the newly refused {prefix: holder}. ``refused`` has them all."""
        present: dict[str, str] = {}
        for p in local_prefixes:
            present.setdefault(p, "")
        for node, attrs in sorted(g.nodes(data=True)):
            for p in attrs["prefixes"]:
                present.setdefault(p, node)
        for gone in self.guard.names - present.keys():
            self.guard.discard(gone)
        before = self.refused
        self.refused = {}
        for p in present:
            if p in self.guard.names:
                continue
            try:
                self.guard.add(p)
            except names.KeyCollision as exc:
                self.refused[p] = exc.other
            except names.InvalidName:
                self.refused[p] = ""
        self.new = {p: h for p, h in self.refused.items() if p not in before}
        return self.new


def rib(lsdb: Lsdb, me: str, local_prefixes: dict[str, int] | None = None,
        claims: KeyClaims | None = None) -> dict[str, RibEntry]:
    """{prefix: RibEntry} for router ``me``. ``local_prefixes`` are the
    prefixes this SG has accepted itself ({prefix: pod port}): always
    delivered locally, whatever the LSDB says. ``claims``, when given, is
    settled against the LSDB's prefixes first (see :class:`KeyClaims`)."""
    g = graph(lsdb)
    if claims is not None:
        claims.settle(g, local_prefixes or ())
    st = lsdb.spf_state
    local = dict(local_prefixes or {})
    refused = dict(claims.refused) if claims is not None else {}
    if st.topo_changed or st.rib is None or st.me != me:
        if me in g:
            st.dist, st.hops = first_hops(g, me)
        else:
            st.dist, st.hops = {}, {}
        out = {}
        for prefix, origins in st.origins_of.items():
            e = _entry(g, me, prefix, origins, st.dist, st.hops, local, refused)
            if e is not None:
                out[prefix] = e
        for prefix in local.keys() - out.keys():
            e = _entry(g, me, prefix, (), st.dist, st.hops, local, refused)
            if e is not None:
                out[prefix] = e
    else:
        # the shortest paths stand: only the prefixes whose announcers, local
        # port or key claim changed get new entries (the RIB object is returned
        # as it was when none did)
        affected = set(st.changed_prefixes)
        affected.update(p for p in local.keys() | st.local.keys() if local.get(p) != st.local.get(p))
        affected.update(p for p in refused.keys() | st.refused.keys()
                        if (p in refused) != (p in st.refused))
        out = st.rib
        for prefix in affected:
            e = _entry(g, me, prefix, st.origins_of.get(prefix, ()), st.dist, st.hops,
                       local, refused)
            if e != out.get(prefix):
                if out is st.rib:
                    out = dict(out)
                if e is None:
                    del out[prefix]
                else:
                    out[prefix] = e
    st.rib, st.me, st.local, st.refused = out, me, local, refused
    st.topo_changed, st.changed_prefixes = False, set()
    return out


def _entry(g: nx.Graph, me: str, prefix: str, origins, dist, hops, local: dict[str, int],
           refused) -> RibEntry | None:
    """``prefix``'s RIB entry as :func:`rib_of_graph` makes it: local when this
    SG accepted it; else towards the nearest of ``origins``; None if refused or
    unreachable."""
    if prefix in refused:
        return None
    if prefix in local:
        return RibEntry(prefix, 0, (me,), frozenset({RibHop(LOCAL, local[prefix])}))
    reach = [o for o in origins if o in dist]
    if not reach:
        return None
    best = min(dist[o] for o in reach)
    nearest = sorted(o for o in reach if dist[o] == best)
    if me in nearest:
        port = g.nodes[me]["prefixes"][prefix]
        entry_hops = frozenset({RibHop(LOCAL, port)})
    else:
        entry_hops = frozenset(RibHop(nb, g.edges[me, nb]["ports"][me])
                               for o in nearest for nb in hops[o])
    return RibEntry(prefix, best, tuple(nearest), entry_hops)


def rib_of_graph(g: nx.Graph, me: str, local_prefixes: dict[str, int] | None = None,
                 claims: KeyClaims | None = None) -> dict[str, RibEntry]:
    """:func:`rib` over a graph shaped as :func:`graph` makes it (node
    attributes ``kind``, ``prefixes`` {prefix: port}, ``overload``; edge
    attributes ``cost`` and ``ports`` {router: its port}): the agents build it
    from their LSDB, the central controller from its own view. Prefixes that
    ``claims`` refused (a second name for a switch key) are left out."""
    refused = claims.refused if claims is not None else {}
    local = local_prefixes or {}
    dist, hops = first_hops(g, me) if me in g else ({}, {})
    by_prefix: dict[str, list[str]] = {p: [] for p in local}
    for node, attrs in g.nodes(data=True):
        for prefix in attrs["prefixes"]:
            by_prefix.setdefault(prefix, []).append(node)
    out: dict[str, RibEntry] = {}
    for prefix, origins in by_prefix.items():
        e = _entry(g, me, prefix, origins, dist, hops, local, refused)
        if e is not None:
            out[prefix] = e
    return out
