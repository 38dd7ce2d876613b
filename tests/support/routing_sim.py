"""Whole networks of routing cores in one process, on a virtual clock.

Every Router of a Topology gets its ports, MACs and roles from the topology;
frames in an outbox are delivered to the router at the other end of the link
(after the P4 program's rule: control frames only between core ports). Links
and routers can be cut; time only moves when the test says so.
"""
from __future__ import annotations

import heapq
import random

from controller.routing.router import Config, Port, Router
from topologies.topo import Topology

KEY = b"test-domain-key"


class SimNet:
    def __init__(self, topo: Topology, config: Config | None = None, key: bytes = KEY,
                 latency: tuple[float, float] | None = None, seed: int = 1):
        """``latency=(lo, hi)``: every frame arrives lo..hi seconds after it
        was sent (uniform, seeded; in order on each link), as on a loaded
        machine; otherwise at once."""
        self.topo = topo
        self.now = 0.0
        self.latency = latency
        self._rng = random.Random(seed)
        self._in_flight: list = []          # heap of (due, n, dst, port, frame)
        self._link_free: dict = {}
        self._n = 0
        self.down_links: set[frozenset] = set()
        self.dead: set[str] = set()
        self.routers: dict[str, Router] = {}
        self.taps: list = []                       # callables(src, port, frame) -> frame|None
        for s in topo.switches():
            ports = {topo.port(s, nb): Port(topo.port_role(s, topo.port(s, nb)),
                                            topo.mac(s, topo.port(s, nb)),
                                            cost=topo.graph.edges[s, nb]["cost"])
                     for nb in topo.graph.neighbors(s)}
            self.routers[s] = Router(s, topo.device_id(s), topo.kind(s), ports, key,
                                     config or Config(), now=0.0)

    def deliver(self) -> int:
        n = 0
        moved = True
        while moved:
            moved = False
            for name, r in self.routers.items():
                out, r.outbox = r.outbox, []
                if name in self.dead:
                    continue
                for port, frame in out:
                    for tap in self.taps:
                        frame = tap(name, port, frame)
                        if frame is None:
                            break
                    if frame is None:
                        continue
                    nb = self.topo.neighbour_on(name, port)
                    if nb is None or self.topo.kind(nb) == "pod" or nb in self.dead:
                        continue
                    if frozenset((name, nb)) in self.down_links:
                        continue
                    if self.latency is not None:
                        due = max(self.now + self._rng.uniform(*self.latency),
                                  self._link_free.get((name, port), 0.0))
                        self._link_free[(name, port)] = due
                        self._n += 1
                        heapq.heappush(self._in_flight, (due, self._n, nb, self.topo.port(nb, name),
                                                         frame))
                        continue
                    self.routers[nb].on_frame(self.topo.port(nb, name), frame, self.now)
                    moved = True
                    n += 1
        return n

    def _arrive(self) -> None:
        while self._in_flight and self._in_flight[0][0] <= self.now:
            _due, _n, dst, port, frame = heapq.heappop(self._in_flight)
            if dst not in self.dead:
                self.routers[dst].on_frame(port, frame, self.now)

    def run(self, seconds: float, step: float = 0.01) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = round(self.now + step, 6)
            self._arrive()
            for name, r in self.routers.items():
                if name not in self.dead:
                    r.tick(self.now)
            self.deliver()

    def link(self, a: str, b: str, up: bool) -> None:
        (self.down_links.discard if up else self.down_links.add)(frozenset((a, b)))
        self.routers[a].on_port_status(self.topo.port(a, b), up, self.now)
        self.routers[b].on_port_status(self.topo.port(b, a), up, self.now)

    def accept_all(self) -> None:
        """Every pod's instances and their service prefixes, on its SG."""
        from topologies.expected import served_prefixes
        for prefix, pods in served_prefixes(self.topo).items():
            for pod in pods:
                sg = self.topo.gateway(pod)
                self.routers[sg].accept_prefix(prefix, self.topo.port(sg, pod),
                                               self.topo.mac(pod, 0), self.now)

    def fibs(self):
        return {n: r.routes() for n, r in self.routers.items() if n not in self.dead}
