"""An agent's state as its admin service answers GetState (routing.proto's
AgentState): neighbours, LSDB, RIB with next hops, counters, FIB version, and
an SG's held prefixes. Read by ``dmsc`` (show, stats, the live view), the
emulation's readiness checks and the benchmarks.
"""
from __future__ import annotations

import time

from controller.proto import routing_pb2 as pb
from controller.routing import spf


def agent_state(agent, counters_only: bool = False) -> pb.AgentState:
    """A snapshot of ``agent`` (taken under its lock); ``counters_only``: the
    scalars and counters, without neighbours, LSDB, RIB and held prefixes."""
    with agent.lock:
        r = agent.router
        now = time.monotonic()
        st = pb.AgentState(router=r.name, router_id=r.router_id, spf_runs=r.spf_runs,
                           fib_version=agent.fib.version,
                           fib_written_at=agent.fib.written_at)
        if counters_only:
            _counters(agent, st)
            if agent.gateway is not None:
                st.pending = len(agent.gateway.pending)
            return st
        for p, nb in sorted(r.neighbors.items()):
            st.neighbors.add(router=nb.router, port=p, mac=nb.mac,
                             state="up" if nb.two_way else "init",
                             last_heard_age_s=now - nb.last_heard,
                             dead_interval_ms=round(r.dead_for(nb) * 1000))
        for k in sorted(r.lsdb.entries):
            st.lsdb.append(r.lsdb.outgoing(k, now))
        for prefix, e in sorted(r.rib.items()):
            ent = st.rib.add(prefix=prefix, origins=list(e.origins), cost=e.cost)
            for h in sorted(e.hops):
                mac = ""
                if h.neighbor == spf.LOCAL and prefix in r.local_prefixes:
                    mac = r.local_prefixes[prefix][1]
                elif h.port in r.neighbors:
                    mac = r.neighbors[h.port].mac
                ent.next_hops.add(port=h.port, neighbor=h.neighbor, mac=mac)
        _counters(agent, st)
        if agent.gateway is not None:
            for h in agent.gateway.held.values():
                st.held.add(prefix=h.prefix, port=h.port, key_id=h.key_id,
                            lease_left_s=min(h.expires - now, 1e9),
                            accepted_at=h.accepted_at, spa_ms=h.verdict_ms)
            st.pending = len(agent.gateway.pending)
        return st


def _counters(agent, st: pb.AgentState) -> None:
    for k, v in agent.router.counters.items():
        st.counters[k] = v
    for k, v in agent.ticks.counters().items():     # controller/agent/tick_lateness.py
        st.counters[k] = v
    if agent.probing is not None:
        for k, v in agent.probing.counters().items():
            st.counters[k] = v
