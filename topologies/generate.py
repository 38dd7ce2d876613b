"""Topology generators for scale: line, ring, grid, fat-tree, random.

Each returns a :class:`Topology` whose switch count is what the name says,
with SGs (one pod each) at the edge and SRs inside:
* ``line(n)``, ``ring(n)``: every other switch is an SG;
* ``grid(r, c)``: the first and last column are SGs;
* ``fat_tree(k)``: edge switches are SGs, aggregation and core are SRs
  (k^2/4 core + k^2 pods' worth of agg/edge: 20 switches for k=4);
* ``random_graph(n, degree, seed)``: connected, a third of the switches SGs.
Pod ``p<i>`` on SG ``g<i>`` serves instance ``/s<i>/1`` (and so ``/s<i>``),
plus every pod serves the anycast service ``/any/<i>`` under ``/any``.

A population (issue 21: "64 pods, 1,000 instances over 100 services"):
``populate(topo, pods, instances, services)`` replaces a topology's pods with
``pods`` pods spread round robin over its SGs (several pods a port each on one
SG), instance ``j`` of service ``k`` (``/s<k>/<j>``, the n-th instance with
n = k + services * (j - 1)) on pod n mod ``pods``, so a service's instances sit
on different pods while there are pods enough. The first pod calls ``/s0``
(so the SGs probe one service's instances for the SCSC, not all of them).
As a spec: ``fig2:pods=64,instances=1000,services=100`` (Figure 2's switches)
or any generator's, e.g. ``ring:8,pods=64,instances=1000,services=100``.
``Topology.save`` writes the result as a topology file (agents read files).
"""
from __future__ import annotations

import random
from pathlib import Path

import networkx as nx

from topologies.topo import Topology


class _Builder:
    def __init__(self, name: str):
        self.name = name
        self.nodes: dict[str, dict] = {}
        self.links: list = []
        self.next_port: dict[str, int] = {}
        self.next_id = 1
        self.pods = 0

    def switch(self, name: str, kind: str) -> str:
        self.nodes[name] = {"kind": kind, "id": self.next_id}
        self.next_id += 1
        self.next_port[name] = 1
        if kind == "sg":
            self.pods += 1
            pod = f"p{self.pods}"
            self.nodes[pod] = {"kind": "pod", "instances": [f"/s{self.pods}/1", f"/any/{self.pods}"]}
            self.links.append([pod, self._port(name)])
        return name

    def _port(self, node: str) -> str:
        p = self.next_port[node]
        self.next_port[node] += 1
        return f"{node}:{p}"

    def link(self, a: str, b: str) -> None:
        self.links.append([self._port(a), self._port(b)])

    def topology(self) -> Topology:
        return Topology.from_dict({"name": self.name, "nodes": self.nodes, "links": self.links},
                                  source=f"<{self.name}>")


def _kind(i: int) -> str:
    return "sg" if i % 2 == 0 else "sr"


def line(n: int) -> Topology:
    b = _Builder(f"line{n}")
    sw = [b.switch(f"{'g' if _kind(i) == 'sg' else 'r'}{i}", _kind(i)) for i in range(n)]
    for u, v in zip(sw, sw[1:]):
        b.link(u, v)
    return b.topology()


def ring(n: int) -> Topology:
    if n < 3:
        raise ValueError("a ring needs at least 3 switches")
    b = _Builder(f"ring{n}")
    sw = [b.switch(f"{'g' if _kind(i) == 'sg' else 'r'}{i}", _kind(i)) for i in range(n)]
    for i in range(n):
        b.link(sw[i], sw[(i + 1) % n])
    return b.topology()


def grid(rows: int, cols: int) -> Topology:
    b = _Builder(f"grid{rows}x{cols}")
    name = {}
    for r in range(rows):
        for c in range(cols):
            kind = "sg" if c in (0, cols - 1) else "sr"
            name[r, c] = b.switch(f"{'g' if kind == 'sg' else 'r'}{r}_{c}", kind)
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols:
                b.link(name[r, c], name[r, c + 1])
            if r + 1 < rows:
                b.link(name[r, c], name[r + 1, c])
    return b.topology()


def fat_tree(k: int) -> Topology:
    if k % 2:
        raise ValueError("fat-tree k must be even")
    b = _Builder(f"fattree{k}")
    half = k // 2
    core = [[b.switch(f"c{i}_{j}", "sr") for j in range(half)] for i in range(half)]
    for pod in range(k):
        aggs = [b.switch(f"a{pod}_{i}", "sr") for i in range(half)]
        edges = [b.switch(f"e{pod}_{i}", "sg") for i in range(half)]
        for i, a in enumerate(aggs):
            for e in edges:
                b.link(a, e)
            for c in core[i]:
                b.link(a, c)
    return b.topology()


def random_graph(n: int, degree: int = 3, seed: int = 1) -> Topology:
    rng = random.Random(seed)
    while True:
        g = nx.random_regular_graph(degree, n, seed=rng.randrange(1 << 30)) \
            if n * degree % 2 == 0 else nx.gnm_random_graph(n, n * degree // 2, seed=rng.randrange(1 << 30))
        if nx.is_connected(g):
            break
    b = _Builder(f"random{n}")
    names = {i: b.switch(f"{'g' if i % 3 == 0 else 'r'}{i}", "sg" if i % 3 == 0 else "sr")
             for i in range(n)}
    for u, v in g.edges:
        b.link(names[u], names[v])
    return b.topology()


def fig2() -> Topology:
    """Figure 2 as shipped (topologies/fig2.yaml): the switches to populate."""
    return Topology.load(Path(__file__).resolve().parent / "fig2.yaml")


def populate(topo: Topology, pods: int, instances: int, services: int) -> Topology:
    """``topo``'s switches with ``pods`` pods and ``instances`` instances over
    ``services`` services (the module's docstring says where each goes)."""
    if pods < 1 or services < 1 or instances < services:
        raise ValueError(f"a population needs pods >= 1, services >= 1 and instances >= "
                         f"services (every service an instance), not pods={pods} "
                         f"instances={instances} services={services}")
    d = topo.to_dict()
    old_pods = set(topo.pods())
    sgs = sorted((n for n in topo.switches() if topo.kind(n) == "sg"), key=topo.device_id)
    if not sgs:
        raise ValueError(f"{topo.name}: no SG to hang pods off")
    nodes = {n: a for n, a in d["nodes"].items() if n not in old_pods}
    links = [ln for ln in d["links"] if not any(e.split(":")[0] in old_pods for e in ln["ends"])]
    used: dict[str, set] = {s: set() for s in sgs}
    for ln in links:
        for e in ln["ends"]:
            node, _, port = e.partition(":")
            if node in used:
                used[node].add(int(port))
    served: list[list[str]] = [[] for _ in range(pods)]
    for n in range(instances):
        k, j = n % services, n // services + 1
        served[n % pods].append(f"/s{k}/{j}")
    for i in range(pods):
        name, sg = f"p{i + 1}", sgs[i % len(sgs)]
        port = next(p for p in range(1, 255) if p not in used[sg])
        used[sg].add(port)
        nodes[name] = {"kind": "pod", "instances": served[i] or [f"/idle/{i + 1}"]}
        if i == 0:
            nodes[name]["calls"] = ["/s0"]
        links.append({"ends": [name, f"{sg}:{port}"]})
    name = f"{topo.name}-{pods}pods-{instances}x{services}"
    return Topology.from_dict({**d, "name": name, "nodes": nodes, "links": links},
                              source=f"<{name}>")


GENERATORS = {"line": line, "ring": ring, "grid": grid, "fat-tree": fat_tree,
              "random": random_graph, "fig2": fig2}
POPULATION = ("pods", "instances", "services")


def from_spec(spec: str) -> Topology:
    """``ring:16``, ``grid:4x4``, ``fat-tree:4``, ``line:8``, ``random:32``, and with
    a population: ``fig2:pods=64,instances=1000,services=100``, ``ring:8,pods=16,...``."""
    kind, _, rest = spec.partition(":")
    if kind not in GENERATORS:
        raise ValueError(f"unknown generator {kind!r}; one of {', '.join(GENERATORS)}")
    args, opts = [], {}
    for tok in filter(None, rest.split(",")):
        key, eq, val = tok.partition("=")
        if not eq:
            args.append(tok)
        elif key not in POPULATION:
            raise ValueError(f"{spec}: unknown option {key!r}; known: {', '.join(POPULATION)}")
        else:
            opts[key] = int(val)
    if kind == "fig2":
        if args:
            raise ValueError(f"{spec}: fig2 takes no size")
        topo = fig2()
    elif len(args) != 1:
        raise ValueError(f"{spec}: {kind} needs one size (e.g. {kind}:8)")
    elif kind == "grid":
        r, _, c = args[0].partition("x")
        topo = grid(int(r), int(c))
    else:
        topo = GENERATORS[kind](int(args[0]))
    if opts:
        if set(opts) != set(POPULATION):
            raise ValueError(f"{spec}: a population needs all of {', '.join(POPULATION)}")
        topo = populate(topo, opts["pods"], opts["instances"], opts["services"])
    return topo
