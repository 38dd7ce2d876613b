"""One topology file -> one networkx graph.

The file (YAML) names every node with an explicit kind and every link with
explicit ports; the Mininet builder, the routing code and the tests all read
the same :class:`Topology`. Format (see topologies/fig2.yaml)::

    name: fig2
    nodes:
      pod1: {kind: pod, instances: [/A/1, /B/1]}
      sg1:  {kind: sg, id: 1}
      sr1:  {kind: sr, id: 5}
    links:
      - [pod1, sg1:1]                 # a pod has one interface; its port is 0
      - {ends: [sg1:2, sr1:1], cost: 1, bw: 100}

A pod may list the services it calls (``calls: [/B]``): its SG probes their
instances for the SCSC (with no ``calls`` anywhere, every SG probes every
replicated service). A pod may name its Ed25519 key file (``key: keys/pod1.pem``, relative to the
topology file; none: the testbed generates one per run). The file may name the
SPA's registry (``registry: registry.yaml``; none: generated from the pods'
instances) and ``operator_overrides`` (``- {sg: sg1, pod: pod1, prefix: /X}``):
prefixes an SG accepts without the SPA, named as such in its log.

Link options: ``cost`` (routing metric, default 1), ``bw`` (Mbit/s, htb),
``delay``/``jitter`` (e.g. ``2ms``; need netem) and ``loss`` (percent; netem).
Switch ports are 1..254 (255 is the CPU port). Every error names the file and
the offending node or link.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import yaml

from traffic.wire import defs, names

KINDS = ("pod", "sg", "sr")
SWITCH_KINDS = ("sg", "sr")
CPU_PORT = defs.CPU_PORT
POD_PORT = 0
_DURATION = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")


class TopologyError(ValueError):
    """A topology file or graph that cannot be built; the message says where."""


@dataclass(frozen=True)
class End:
    node: str
    port: int


@dataclass(frozen=True, order=True)
class NextHop:
    """Where a switch sends a frame: out of ``port``, to ``mac`` (the MAC of
    the far end of that port's link). The one next-hop type of the project:
    the reference FIBs (topologies/expected.py), the agents' routes and the
    FIB entries read back from a switch all hold these."""
    port: int
    mac: str


@dataclass(frozen=True)
class Copp:
    """Control-plane policing of each pod-facing port (p4src/main.p4's meters):
    what one pod may punt to its SG's CPU, in packets per second and a burst in
    packets; above it the P4 program drops and counts (announce_policed,
    punt_policed). Announcements (a renewal about every half lease per prefix) and every
    other punt (probe replies to the SG, FIB misses) have a meter each. A
    topology file's ``copp:`` mapping overrides these defaults."""
    announce_pps: int = 200
    announce_burst: int = 400
    punt_pps: int = 1000
    punt_burst: int = 2000

    @classmethod
    def from_dict(cls, d, source: str = "<dict>") -> "Copp":
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise TopologyError(f"{source}: 'copp' must map {', '.join(_COPP_FIELDS)} to numbers")
        unknown = set(d) - set(_COPP_FIELDS)
        if unknown:
            raise TopologyError(f"{source}: copp: unknown field(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(_COPP_FIELDS)}")
        for k, v in d.items():
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise TopologyError(f"{source}: copp: {k} must be a whole number > 0, not {v!r}")
        return cls(**d)


_COPP_FIELDS = ("announce_pps", "announce_burst", "punt_pps", "punt_burst")


class Topology:
    """A validated topology: ``graph`` is a networkx Graph whose nodes carry
    ``kind`` (and ``id`` for switches, ``instances`` for pods) and whose edges
    carry ``ports`` ({node: port}), ``cost`` and link parameters."""

    def __init__(self, graph: nx.Graph, name: str = "topology", source: str = "<graph>",
                 registry: str | None = None, overrides=(), copp: Copp | None = None):
        self.graph = graph
        self.name = name
        self.source = source
        self.registry = registry              # as written in the file (relative to it)
        self.overrides = [dict(o) for o in overrides]
        self.copp = copp or Copp()
        self._validate()

    # -- loading ----------------------------------------------------------
    @classmethod
    def load(cls, path) -> "Topology":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise TopologyError(f"{path}: cannot read topology: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data, source: str = "<dict>") -> "Topology":
        if not isinstance(data, dict) or "nodes" not in data or "links" not in data:
            raise TopologyError(f"{source}: a topology needs 'nodes' and 'links'")
        g = nx.Graph()
        for node, attrs in (data["nodes"] or {}).items():
            attrs = dict(attrs or {})
            kind = attrs.get("kind")
            if kind not in KINDS:
                raise TopologyError(f"{source}: node {node!r} has kind {kind!r}; "
                                    f"expected one of {', '.join(KINDS)}")
            g.add_node(str(node), **attrs)
        for i, link in enumerate(data["links"] or []):
            opts = {}
            if isinstance(link, dict):
                opts = {k: v for k, v in link.items() if k != "ends"}
                link = link.get("ends")
            if not isinstance(link, (list, tuple)) or len(link) != 2:
                raise TopologyError(f"{source}: link #{i} must have two ends")
            a, b = (cls._end(g, str(e), source, i) for e in link)
            if a.node == b.node:
                raise TopologyError(f"{source}: link #{i} connects {a.node} to itself")
            if g.has_edge(a.node, b.node):
                raise TopologyError(f"{source}: link #{i}: {a.node} and {b.node} are "
                                    f"already linked (parallel links are not supported)")
            g.add_edge(a.node, b.node, ports={a.node: a.port, b.node: b.port},
                       cost=opts.pop("cost", 1), **opts)
        registry = data.get("registry")
        if registry is not None and not isinstance(registry, str):
            raise TopologyError(f"{source}: 'registry' must be a file name")
        overrides = data.get("operator_overrides") or []
        if not isinstance(overrides, list) or not all(isinstance(o, dict) for o in overrides):
            raise TopologyError(f"{source}: 'operator_overrides' must be a list of "
                                f"{{sg, pod, prefix}}")
        return cls(g, name=str(data.get("name", Path(source).stem)), source=source,
                   registry=registry, overrides=overrides,
                   copp=Copp.from_dict(data.get("copp"), source))

    def relative(self, path: str) -> Path:
        """A path named in the file, relative to the file's folder."""
        p = Path(path)
        return p if p.is_absolute() else Path(self.source).parent / p

    @staticmethod
    def _end(g: nx.Graph, text: str, source: str, i: int) -> End:
        node, _, port = text.partition(":")
        if node not in g:
            raise TopologyError(f"{source}: link #{i} names unknown node {node!r}")
        if g.nodes[node]["kind"] == "pod":
            if port not in ("", str(POD_PORT)):
                raise TopologyError(f"{source}: link #{i}: pod {node} has only port {POD_PORT}")
            return End(node, POD_PORT)
        if not port.isdigit():
            raise TopologyError(f"{source}: link #{i}: switch end {text!r} needs a port "
                                f"('{node}:<port>')")
        return End(node, int(port))

    def to_dict(self) -> dict:
        g = self.graph
        nodes = {n: dict(a) for n, a in g.nodes(data=True)}
        links = []
        for u, v, a in g.edges(data=True):
            ends = [u if g.nodes[u]["kind"] == "pod" else f"{u}:{a['ports'][u]}",
                    v if g.nodes[v]["kind"] == "pod" else f"{v}:{a['ports'][v]}"]
            opts = {k: val for k, val in a.items() if k not in ("ports",)}
            links.append({"ends": ends, **opts})
        out = {"name": self.name, "nodes": nodes, "links": links}
        if self.registry:
            out["registry"] = str(self.relative(self.registry).resolve())
        if self.overrides:
            out["operator_overrides"] = self.overrides
        if self.copp != Copp():
            out["copp"] = {f: getattr(self.copp, f) for f in _COPP_FIELDS}
        return out

    def save(self, path) -> "Topology":
        """Write as a topology file; the returned Topology has that file as source."""
        path = Path(path)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return Topology.load(path)

    # -- validation -------------------------------------------------------
    def _validate(self) -> None:
        g, src = self.graph, self.source
        ids = {}
        for n, a in g.nodes(data=True):
            if a["kind"] in SWITCH_KINDS:
                dev = a.get("id")
                if not isinstance(dev, int) or not 0 <= dev < 65536:
                    raise TopologyError(f"{src}: switch {n!r} needs an integer 'id' (0..65535)")
                if dev in ids:
                    raise TopologyError(f"{src}: switches {ids[dev]!r} and {n!r} share id {dev}")
                ids[dev] = n
            else:
                if "key" in a and not isinstance(a["key"], str):
                    raise TopologyError(f"{src}: pod {n!r}: 'key' must be a file name")
                for fld in ("instances", "calls"):
                    listed = a.get(fld, [])
                    if not isinstance(listed, list):
                        raise TopologyError(f"{src}: pod {n!r}: '{fld}' must be a list of names")
                    for name in listed:
                        try:
                            names.prefix_key(name)
                        except names.InvalidName as exc:
                            raise TopologyError(f"{src}: pod {n!r}: {fld}: {exc}") from None
                if g.degree(n) != 1:
                    raise TopologyError(f"{src}: pod {n!r} must have exactly one link "
                                        f"(to its SG), has {g.degree(n)}")
                (sg,) = g.neighbors(n)
                if g.nodes[sg]["kind"] != "sg":
                    raise TopologyError(f"{src}: pod {n!r} is linked to {sg!r}, "
                                        f"which is not an SG")
        for n in g.nodes:
            seen = {}
            for nb in g.neighbors(n):
                p = g.edges[n, nb]["ports"][n]
                if g.nodes[n]["kind"] != "pod" and not 1 <= p < CPU_PORT:
                    raise TopologyError(f"{src}: {n} port {p} is outside 1..{CPU_PORT - 1}")
                if p in seen:
                    raise TopologyError(f"{src}: {n} port {p} is used by links to "
                                        f"{seen[p]} and {nb}")
                seen[p] = nb
        for u, v, a in g.edges(data=True):
            cost = a.get("cost")
            if not isinstance(cost, (int, float)) or cost <= 0:
                raise TopologyError(f"{src}: link {u}-{v}: cost must be a positive number")
            for key in ("delay", "jitter"):
                if key in a and not _DURATION.match(str(a[key])):
                    raise TopologyError(f"{src}: link {u}-{v}: {key} {a[key]!r} is not "
                                        f"like '2ms'")
        for i, o in enumerate(self.overrides):
            where = f"{src}: operator_overrides #{i}"
            if set(o) != {"sg", "pod", "prefix"}:
                raise TopologyError(f"{where}: needs exactly sg, pod and prefix")
            if o["sg"] not in g or g.nodes[o["sg"]]["kind"] != "sg":
                raise TopologyError(f"{where}: {o['sg']!r} is not an SG")
            if o["pod"] not in g or not g.has_edge(o["pod"], o["sg"]):
                raise TopologyError(f"{where}: {o['pod']!r} is not a pod of {o['sg']}")
            try:
                names.prefix_key(o["prefix"])
            except names.InvalidName as exc:
                raise TopologyError(f"{where}: {exc}") from None

    # -- queries ----------------------------------------------------------
    def kind(self, node: str) -> str:
        return self.graph.nodes[node]["kind"]

    def switches(self) -> list[str]:
        return sorted((n for n in self.graph if self.kind(n) in SWITCH_KINDS),
                      key=lambda n: self.graph.nodes[n]["id"])

    def pods(self) -> list[str]:
        return sorted(n for n in self.graph if self.kind(n) == "pod")

    def device_id(self, switch: str) -> int:
        return self.graph.nodes[switch]["id"]

    def port(self, node: str, neighbour: str) -> int:
        return self.graph.edges[node, neighbour]["ports"][node]

    def neighbour_on(self, node: str, port: int) -> str | None:
        for nb in self.graph.neighbors(node):
            if self.port(node, nb) == port:
                return nb
        return None

    def gateway(self, pod: str) -> str:
        """The SG a pod hangs off."""
        return next(iter(self.graph.neighbors(pod)))

    def instances(self, pod: str) -> list[str]:
        return [names.normalize(i) for i in self.graph.nodes[pod].get("instances", [])]

    def calls(self, pod: str) -> list[str]:
        """The services the pod calls (its SG probes their instances)."""
        return [names.normalize(c) for c in self.graph.nodes[pod].get("calls", [])]

    def pod_of(self, instance: str) -> str:
        instance = names.normalize(instance)
        for p in self.pods():
            if instance in self.instances(p):
                return p
        raise TopologyError(f"{self.source}: no pod serves {instance}")

    def port_role(self, switch: str, port: int) -> str:
        nb = self.neighbour_on(switch, port)
        return "pod" if nb is None or self.kind(nb) == "pod" else "core"

    def mac(self, node: str, port: int | None = None) -> str:
        """Deterministic, locally administered MAC of a node's interface."""
        if self.kind(node) == "pod":
            idx = self.pods().index(node) + 1
            return f"02:00:01:00:{idx >> 8 & 0xff:02x}:{idx & 0xff:02x}"
        dev = self.device_id(node)
        return f"02:00:00:{dev >> 8 & 0xff:02x}:{dev & 0xff:02x}:{port:02x}"

    def intf_name(self, node: str, port: int) -> str:
        return f"{node}-eth{port}"

    def core_graph(self) -> nx.Graph:
        """Switches only, edges weighted by cost: what SPF runs over."""
        return self.graph.subgraph(self.switches()).copy()
