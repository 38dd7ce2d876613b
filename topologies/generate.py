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
``Topology.save`` writes the result as a topology file (agents read files).
"""
from __future__ import annotations

import random

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


GENERATORS = {"line": line, "ring": ring, "grid": grid, "fat-tree": fat_tree,
              "random": random_graph}


def from_spec(spec: str) -> Topology:
    """``ring:16``, ``grid:4x4``, ``fat-tree:4``, ``line:8``, ``random:32``."""
    kind, _, arg = spec.partition(":")
    if kind not in GENERATORS:
        raise ValueError(f"unknown generator {kind!r}; one of {', '.join(GENERATORS)}")
    if kind == "grid":
        r, _, c = arg.partition("x")
        return grid(int(r), int(c))
    return GENERATORS[kind](int(arg))
