"""The SCSC's decisions (DMSC 5 item 4), pure logic: telemetry and the
topology in, forwarding policies out.

For every ingress SG that reports telemetry and every service with more than
one instance, the *default* instances are the ones SPF picks (the nearest
origins of the service name from that SG). When a default instance violates
the draft's conditions, as measured by that SG's probes,

    bandwidth <= threshold, delay >= threshold, jitter >= threshold
    (and, here, loss >= threshold: a dead instance answers no probe),

the SG's traffic to the service name is steered to the best instance among
the replicas that violate nothing (the smallest measured delay), along the
shortest path over the topology weighted by cost, each link's cost raised by
the measured residence time of the switch it leads to (x (1 + ms / 10)). Hysteresis both ways: a violation counts once it has lasted
``onset_s`` (one noisy report steers nothing), and a steered pair returns to
its default only after the defaults have violated nothing for ``restore_s``
(so a flapping instance does not flap the traffic); if the chosen instance
starts violating it moves on at once to a healthy one, and stays where it is
when there is none (the defaults are known to be no better). Telemetry older than ``stale_s`` counts as unknown: neither
a violation nor a candidate.

A decision becomes policy entries on every switch of its path: requests to
the service name from the ingress SG's own instances go to the next router,
and at the last SG to the chosen instance's pod.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import networkx as nx

from controller.policy_channel import LOCAL
from traffic.wire import names

HOP_MS_SCALE = 10.0        # path weight: cost x (1 + the next switch's residence ms / this)
MIN_LOSS_SAMPLES = 10      # a loss figure over fewer probes says little (routes still forming)


@dataclass
class Thresholds:
    bandwidth_mbps: float = 0.0     # violation when measured <= it; 0 disables
    delay_ms: float = 100.0         # violation when measured >= it (docs/scsc.md: the
    jitter_ms: float = 50.0         # probes' own noise here is 10-35 ms, jitter 20-30 ms)
    loss: float = 0.5

    def violation(self, m) -> str | None:
        """Why the metrics ``m`` (a PathReport) violate, or None."""
        if m.samples >= MIN_LOSS_SAMPLES and m.loss >= self.loss:
            return f"loss {m.loss:.0%} >= {self.loss:.0%}"
        if m.samples and m.delay_ms >= self.delay_ms:
            return f"delay {m.delay_ms:.1f} ms >= {self.delay_ms:g} ms"
        if m.samples and m.jitter_ms >= self.jitter_ms:
            return f"jitter {m.jitter_ms:.1f} ms >= {self.jitter_ms:g} ms"
        if self.bandwidth_mbps > 0 and 0 < m.bandwidth_mbps <= self.bandwidth_mbps:
            return f"bandwidth {m.bandwidth_mbps:.1f} Mbit/s <= {self.bandwidth_mbps:g}"
        return None


@dataclass
class Decision:
    sg: str
    service: str
    defaults: list[str]
    chosen: str = ""               # "" when traffic follows SPF
    path: list[str] = field(default_factory=list)
    why: str = ""
    since: float = 0.0
    good_since: float | None = None   # when the defaults stopped violating (while steered)


@dataclass(frozen=True)
class Entry:
    switch: str
    dst: str                       # the service name
    src: tuple[str, ...]           # the ingress SG's instance names
    next: str                      # neighbour router, or "local:<instance>"
    instance: str


def instances(g: nx.Graph) -> dict[str, dict[str, list[str]]]:
    """{service: {instance: [origin SGs]}} from the prefixes in the graph."""
    out: dict[str, dict[str, list[str]]] = {}
    for node, attrs in g.nodes(data=True):
        for prefix in attrs.get("prefixes", {}):
            if names.is_reserved(prefix):
                continue
            parts = names.components(prefix)
            if len(parts) >= 2:
                out.setdefault("/" + parts[0], {}).setdefault(prefix, []).append(node)
    return out


class Scheduler:
    def __init__(self, thresholds: Thresholds | None = None, *, restore_s: float = 3.0,
                 onset_s: float = 0.2, stale_s: float = 2.0):
        self.t = thresholds or Thresholds()
        self.restore_s, self.onset_s, self.stale_s = restore_s, onset_s, stale_s
        self.decisions: dict[tuple[str, str], Decision] = {}
        self.bad_since: dict[tuple[str, str], float] = {}     # (sg, instance) -> since

    def _metrics(self, telemetry, sg, inst, now):
        got = telemetry.get((sg, inst))
        if got is None or now - got[1] > self.stale_s:
            return None
        return got[0]

    def evaluate(self, g: nx.Graph, telemetry: dict, now: float,
                 hop_ms: dict[str, float] | None = None) -> list[Entry]:
        """``telemetry``: {(sg, instance): (PathReport, received at)};
        ``hop_ms``: {router: measured residence time}. Updates the decisions
        and returns every policy entry they need."""
        services = instances(g)
        reporting = {sg for sg, _i in telemetry}
        live = set()
        for sg in sorted(reporting & set(g.nodes)):
            dist = nx.single_source_dijkstra_path_length(g, sg, weight="cost")
            for service, insts in sorted(services.items()):
                reach = {i: min(dist[o] for o in os_ if o in dist)
                         for i, os_ in insts.items() if any(o in dist for o in os_)}
                if len(reach) < 2:
                    continue
                best = min(reach.values())
                defaults = sorted(i for i, d in reach.items() if d == best)
                key = (sg, service)
                live.add(key)
                d = self.decisions.setdefault(key, Decision(sg, service, defaults, since=now))
                d.defaults = defaults
                self._decide(d, g, insts, reach, telemetry, now, hop_ms or {})
        for gone in set(self.decisions) - live:
            del self.decisions[gone]
        return [e for d in self.decisions.values() if d.chosen for e in self._entries(d, g)]

    def _decide(self, d: Decision, g, insts, reach, telemetry, now, hop_ms) -> None:
        bad = {}
        for i in reach:
            m = self._metrics(telemetry, d.sg, i, now)
            why = self.t.violation(m) if m is not None else None
            if not why:
                self.bad_since.pop((d.sg, i), None)
                continue
            since = self.bad_since.setdefault((d.sg, i), now)
            if now - since >= self.onset_s:
                bad[i] = why
        defaults_bad = [i for i in d.defaults if i in bad]
        keep = None
        if d.chosen:
            if d.chosen not in reach:
                d.chosen = ""                       # gone: choose again below
            elif d.chosen in bad:
                keep = (d.chosen, d.path)           # choose again; stay if nothing is better
                d.chosen = ""
            elif not defaults_bad:
                d.good_since = d.good_since or now
                if now - d.good_since >= self.restore_s:
                    d.chosen, d.path, d.since = "", [], now
                    d.why = f"defaults healthy for {self.restore_s:g} s: back to SPF"
                return
            else:
                d.good_since = None
                return
        if not defaults_bad:
            return
        candidates = []
        for i in reach:
            if i in bad:
                continue
            m = self._metrics(telemetry, d.sg, i, now)
            if m is not None and m.samples and m.delay_ms > 0:
                candidates.append((m.delay_ms, reach[i], i))
        if not candidates:
            if keep is not None and defaults_bad:   # the defaults are no better: stay
                d.chosen, d.path = keep
                d.why = f"{d.chosen} violates too ({bad[d.chosen]}); no healthier replica"
                return
            d.why = f"{', '.join(defaults_bad)} violate ({bad[defaults_bad[0]]}); no healthy replica"
            return
        _delay, _dist, choice = min(candidates)
        origin = min(insts[choice], key=lambda o: reach[choice] if o in g else math.inf)

        def weight(u, v, attrs):     # a switch holding frames HOP_MS_SCALE ms costs a hop more
            return attrs.get("cost", 1) * (1 + hop_ms.get(v, 0.0) / HOP_MS_SCALE)
        try:
            path = nx.dijkstra_path(g, d.sg, origin, weight=weight)
        except nx.NetworkXNoPath:
            return
        d.chosen, d.path, d.since, d.good_since = choice, path, now, None
        d.why = f"{defaults_bad[0]}: {bad[defaults_bad[0]]}; steered to {choice}"

    def push_order(self) -> list[str]:
        """Switches in the order policies should reach them: every steered
        path from its last switch back to its first, so no switch sends
        traffic towards a neighbour that does not steer it yet (no loop)."""
        order: list[str] = []
        for d in sorted(self.decisions.values(), key=lambda d: (d.sg, d.service)):
            for sw in reversed(d.path):
                if sw not in order:
                    order.append(sw)
        return order

    def hop_index(self) -> dict[str, int]:
        """{switch: its position on a steered path (0: the ingress SG)}; the
        furthest when it is on several."""
        out: dict[str, int] = {}
        for d in self.decisions.values():
            for i, sw in enumerate(d.path):
                out[sw] = max(out.get(sw, 0), i)
        return out

    def _entries(self, d: Decision, g) -> list[Entry]:
        src = tuple(sorted(p for p in g.nodes[d.sg].get("prefixes", {})
                           if not names.is_reserved(p) and len(names.components(p)) >= 2))
        if not src:
            return []
        out = []
        for u, v in zip(d.path, d.path[1:]):
            out.append(Entry(u, d.service, src, v, d.chosen))
        out.append(Entry(d.path[-1], d.service, src, LOCAL + d.chosen, d.chosen))
        return out


def hop_delays(telemetry: dict, id_to_name: dict[int, str]) -> dict[str, float]:
    """{router: median residence time in ms} over every reported path."""
    acc: dict[str, list[float]] = {}
    for (_sg, _i), (m, _at) in telemetry.items():
        for sid, us in zip(m.path, m.hop_us):
            if sid in id_to_name:
                acc.setdefault(id_to_name[sid], []).append(us / 1000)
    return {r: statistics.median(v) for r, v in acc.items()}
