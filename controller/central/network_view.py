"""The central controller's view of the network, and every switch's FIB from it.

Pure state, no I/O (the controller process feeds it, the unit tests drive it
with a clock of their own):

* **switches**: each switch's own configuration (kind, device id, ports with
  role, MAC and cost), as each agent reads its own from the topology file:
  what a controller is told about the devices it manages. Nothing about
  links or pods comes from there;
* **sessions**: which switches the controller has a P4Runtime session with
  (:meth:`View.switch_up` / :meth:`View.switch_down`); a switch without one
  is not in the graph;
* **links**, from discovery frames: the controller sends a frame out of every
  core port of every switch (packet-out) every hello interval, and the one
  that arrives as a packet-in at another switch's port says "switch A's port
  pa reaches switch B's port pb". A link is up while both directions have
  been heard within the dead interval and both ports have carrier (LLDP's
  way of building an SDN controller's topology, OpenDaylight's and ONOS's);
* **prefixes** held by each SG for its pods (the gateway duties accept and
  withdraw them; the SG's own name is always delivered to the CPU port).

:meth:`View.fibs` runs SPF once per switch over the graph of up links
(controller.routing.spf, the same code as the agents' over their LSDB: same
costs, ECMP and anycast) and turns each RIB into FIB routes.

Discovery frames use the agents' hello format (a DMSC control frame of type
HELLO with a ``Hello`` body and an HMAC-SHA256 auth TLV with the domain key):
:func:`discovery_frame` builds one, :meth:`View.on_discovery` takes one in.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field

import networkx as nx

from controller.proto.routing_pb2 import Hello
from controller.routing import spf
from controller.routing.route import Route
from controller.keys import auth_code
from controller.routing.router import ROUTING_KINDS, Port, open_control_frame
from topologies.topo import CPU_PORT, Copp, NextHop, Topology
from traffic.wire import codec, defs, names

DISCOVERY_KINDS = {defs.TYPE_HELLO: ROUTING_KINDS[defs.TYPE_HELLO]}


@dataclass
class SwitchConf:
    name: str
    kind: str                      # "sg" or "sr"
    device_id: int
    ports: dict[int, Port]
    intfs: dict[int, str] = field(default_factory=dict)   # port -> interface (carrier)
    copp: Copp = field(default_factory=Copp)               # pod ports' punt meters


def switch_confs(topo: Topology) -> dict[str, SwitchConf]:
    """Every switch's own configuration from the topology file (ports, roles,
    MACs, costs): no links, no pods."""
    out = {}
    for sw in topo.switches():
        ports = {}
        for nb in topo.graph.neighbors(sw):
            p = topo.port(sw, nb)
            ports[p] = Port(topo.port_role(sw, p), topo.mac(sw, p),
                            cost=int(topo.graph.edges[sw, nb]["cost"]))
        out[sw] = SwitchConf(sw, topo.kind(sw), topo.device_id(sw), ports,
                             {p: topo.intf_name(sw, p) for p in ports}, topo.copp)
    return out


def discovery_frame(conf: SwitchConf, port: int, key: bytes, msg_id: int,
                    hello_ms: int, dead_ms: int) -> bytes:
    """The frame the controller sends out of ``conf``'s ``port``: an agent's
    hello (same type, body and auth), hop limit 1."""
    body = Hello(router=conf.name, router_id=conf.device_id, port=port, hello_ms=hello_ms,
                 dead_ms=dead_ms).SerializeToString()
    return codec.encode(defs.TYPE_HELLO, names.switch_name(), names.switch_name(conf.name),
                        [(codec.TLV_HELLO, body),
                         (codec.TLV_AUTH, auth_code(key, defs.TYPE_HELLO, body))],
                        msg_id=msg_id, hop_limit=1, eth_src=conf.ports[port].mac)


@dataclass
class Heard:
    switch: str          # who sent it
    port: int            # out of which of its ports
    at: float            # when it arrived


@dataclass(frozen=True)
class Link:
    a: str
    a_port: int
    b: str
    b_port: int
    cost: int


class View:
    def __init__(self, switches: dict[str, SwitchConf], key: bytes, hello_s: float,
                 dead_s: float):
        self.switches = switches
        self.key = key
        self.hello_s, self.dead_s = hello_s, dead_s
        self.connected: set[str] = set()
        self.heard: dict[tuple[str, int], Heard] = {}          # (at switch, its port) -> sender
        self.prefixes: dict[str, dict[str, tuple[int, str]]] = {
            s: {} for s, c in switches.items() if c.kind == "sg"}   # sg -> prefix -> (port, mac)
        # more pod ports serving an SG's prefix: sg -> prefix -> {port: mac}
        self.sharers: dict[str, dict[str, dict[int, str]]] = {}
        self.counters: collections.Counter = collections.Counter()
        self.guard = names.KeyGuard()    # one name per switch key, across every SG
        self.version = 0             # bumps on every change that can change a FIB
        self.changed_at = 0.0
        self._links: frozenset[Link] = frozenset()
        self._last_tick: float | None = None
        self._next_scan = float("inf")       # no hearing can expire before this

    def _changed(self, now: float) -> None:
        self.version += 1
        self.changed_at = now

    # -- sessions and carrier --------------------------------------------------
    def switch_up(self, name: str, now: float) -> None:
        if name not in self.connected:
            self.connected.add(name)
            self._changed(now)

    def switch_down(self, name: str, now: float) -> None:
        """The session broke: the switch leaves the graph, and what was heard
        from it or at it is forgotten (it is relearned when it is back)."""
        self.connected.discard(name)
        for k in [k for k, h in self.heard.items() if k[0] == name or h.switch == name]:
            del self.heard[k]
        self._relink(now)
        self._changed(now)

    def port_status(self, name: str, port: int, up: bool, now: float) -> None:
        p = self.switches[name].ports.get(port)
        if p is None or p.up == up:
            return
        p.up = up
        if not up:
            self.counters["carrier_lost"] += 1
            self.heard.pop((name, port), None)
            for k in [k for k, h in self.heard.items() if (h.switch, h.port) == (name, port)]:
                del self.heard[k]
        self._relink(now)

    # -- discovery ---------------------------------------------------------------
    def on_discovery(self, at: str, port: int, raw: bytes, now: float) -> None:
        """A control frame punted by switch ``at`` from its ``port``. Never
        raises on bad input: refused frames are counted by reason."""
        conf = self.switches.get(at)
        if conf is None or port not in conf.ports or conf.ports[port].role != "core":
            self.counters["rx_ctrl_on_pod_port"] += 1
            return
        # discovery frames are hellos: an agent's LSA is not ours (rx_unexpected_type)
        opened = open_control_frame(raw, self.key, self.counters, kinds=DISCOVERY_KINDS)
        if opened is None:
            return
        _pkt, h = opened
        sender = self.switches.get(h.router)
        if sender is None or h.port not in sender.ports or h.router == at:
            self.counters["rx_hello_bad_router"] += 1
            return
        self.counters["discovery_received"] += 1
        old = self.heard.get((at, port))
        if old is not None and (old.switch, old.port) == (h.router, h.port):
            old.at = now                 # the same link heard again: nothing else changes
            return
        self.heard[(at, port)] = Heard(h.router, h.port, now)
        self._next_scan = min(self._next_scan, now + self.dead_s)
        self._relink(now)

    def tick(self, now: float) -> None:
        """Forget what was not heard again within the dead interval. A tick
        that comes late (the controller starved of CPU) does not count the
        time it missed as silence."""
        if self._last_tick is not None and now - self._last_tick > 2 * self.hello_s:
            excess = now - self._last_tick - self.hello_s
            for h in self.heard.values():
                h.at = min(h.at + excess, now)
            self._next_scan += excess
            self.counters["stalls"] += 1
        self._last_tick = now
        if now < self._next_scan:       # nothing can have gone silent for long enough yet
            return
        stale = [k for k, h in self.heard.items() if now - h.at > self.dead_s]
        for k in stale:
            del self.heard[k]
            self.counters["discovery_dead"] += 1
        self._next_scan = min((h.at for h in self.heard.values()), default=float("inf")) \
            + self.dead_s
        if stale:
            self._relink(now)

    def next_deadline(self) -> float:
        """When :meth:`tick` should look again: the oldest hearing's dead
        interval runs out (or later: hearings refreshed since are not counted)."""
        return self._next_scan

    def _relink(self, now: float) -> None:
        links = set()
        for (b, pb), h in self.heard.items():
            a, pa = h.switch, h.port
            back = self.heard.get((a, pa))
            if back is None or (back.switch, back.port) != (b, pb) or (a, pa) > (b, pb):
                continue                     # one way only (or the other half of a pair)
            if a not in self.connected or b not in self.connected:
                continue
            ca, cb = self.switches[a].ports[pa], self.switches[b].ports[pb]
            if not (ca.up and cb.up):
                continue
            links.add(Link(a, pa, b, pb, max(ca.cost, cb.cost)))
        links = frozenset(links)
        if links != self._links:
            self.counters["link_changes"] += len(links ^ self._links)
            self._links = links
            self._changed(now)

    @property
    def links(self) -> frozenset[Link]:
        return self._links

    # -- prefixes (the gateway duties) --------------------------------------------
    def accept_prefix(self, sg: str, prefix: str, port: int, mac: str, now: float) -> None:
        """The one way a prefix enters the view: an SG's pod behind ``port``.
        Raises InvalidName, KeyCollision (another name has its switch key: the
        central controller is the second line behind the SPA, as the agents are)
        or ValueError (not a pod port, a reserved name)."""
        names.prefix_key(prefix)
        prefix = names.normalize(prefix)
        conf = self.switches.get(sg)
        if conf is None or conf.kind != "sg":
            raise ValueError(f"{sg} is not an SG")
        if conf.ports.get(port) is None or conf.ports[port].role != "pod":
            raise ValueError(f"port {port} of {sg} is not a pod-facing port")
        if names.is_reserved(prefix):
            raise ValueError(f"{prefix} is a reserved name (the switches')")
        self.guard.add(prefix)
        if self.prefixes[sg].get(prefix) != (port, mac):
            self.prefixes[sg][prefix] = (port, mac)
            self._changed(now)

    def set_local_sharers(self, sg: str, prefix: str, sharers: dict[int, str],
                          now: float) -> None:
        """More pod ports of ``sg`` serving ``prefix`` besides its holder: its
        FIB spreads calls over all of them (the agents' Router does the same)."""
        prefix = names.normalize(prefix)
        cur = self.sharers.setdefault(sg, {})
        if sharers and cur.get(prefix) != sharers:
            cur[prefix] = dict(sharers)
            self._changed(now)
        elif not sharers and cur.pop(prefix, None) is not None:
            self._changed(now)

    def withdraw_prefix(self, sg: str, prefix: str, now: float) -> bool:
        prefix = names.normalize(prefix)
        if self.prefixes.get(sg, {}).pop(prefix, None) is None:
            return False
        self.sharers.get(sg, {}).pop(prefix, None)
        if not any(prefix in held for held in self.prefixes.values()):
            self.guard.discard(prefix)           # anycast: the last SG holding it
        self._changed(now)
        return True

    # -- SPF -------------------------------------------------------------------------
    def graph(self) -> nx.Graph:
        """The graph :func:`controller.routing.spf.rib_of_graph` reads: connected
        switches, up links; an SG's prefixes (its own name at the CPU port)."""
        g = nx.Graph()
        for s in sorted(self.connected):
            conf = self.switches[s]
            prefixes = {}
            if conf.kind == "sg":
                prefixes = {p: port for p, (port, _mac) in self.prefixes[s].items()}
                prefixes[names.switch_name(s)] = CPU_PORT
            g.add_node(s, kind=conf.kind, prefixes=prefixes, overload=False)
        for ln in self._links:
            g.add_edge(ln.a, ln.b, cost=ln.cost, ports={ln.a: ln.a_port, ln.b: ln.b_port})
        return g

    def ribs(self, g: nx.Graph | None = None) -> dict[str, dict[str, spf.RibEntry]]:
        g = self.graph() if g is None else g
        return {s: spf.rib_of_graph(g, s) for s in g.nodes}

    def routes(self, switch: str, rib: dict[str, spf.RibEntry], g: nx.Graph) -> dict[str, Route]:
        """One switch's RIB as FIB routes: a neighbour becomes (port, the MAC
        of its port on that link); a local prefix its pod's port and MAC (the
        CPU port, for the SG's own name, a punt)."""
        out = {}
        for prefix, e in rib.items():
            hops = set()
            for h in e.hops:
                if h.neighbor == spf.LOCAL:
                    if h.port == CPU_PORT:
                        hops.add(NextHop(CPU_PORT, ""))
                    else:
                        hops.add(NextHop(h.port, self.prefixes[switch][prefix][1]))
                        hops.update(NextHop(p, m) for p, m in
                                    self.sharers.get(switch, {}).get(prefix, {}).items())
                else:
                    nb_port = g.edges[switch, h.neighbor]["ports"][h.neighbor]
                    hops.add(NextHop(h.port, self.switches[h.neighbor].ports[nb_port].mac))
            if hops:
                out[prefix] = Route.via(hops)
        return out

    def fibs(self) -> tuple[dict[str, dict[str, Route]], dict[str, dict[str, spf.RibEntry]]]:
        """({switch: {prefix: Route}}, the RIBs they came from), for every
        connected switch."""
        g = self.graph()
        ribs = self.ribs(g)
        return {s: self.routes(s, rib, g) for s, rib in ribs.items()}, ribs
