"""Reads of a running switch: its FIB over P4Runtime, and from its agent (or
the central controller's view of it) its LSDB, RIB and SCSC policies.
"""
from __future__ import annotations

from dmsc.actions.dispatch import ActionError, Switch, action, live_agent_of
from traffic.wire import names


def _name_index(net, switch: str) -> names.NameIndex:
    from topologies.expected import served_prefixes
    idx = names.NameIndex()
    for p in served_prefixes(net.topo):
        idx.add(p)
    for pod in net.topo.pods():
        for p in net.announcements(pod):
            idx.add(p)
    app = net.agents.get(switch)
    if app is not None:
        try:
            with app.admin() as c:
                for lsa in c.state().lsdb:
                    for p in lsa.prefixes:
                        idx.add(p.prefix)
        except Exception:           # the agent may be down: the names we have do
            pass
    return idx


@action
def fib(net, switch: Switch) -> dict:
    """A switch's FIB read back over P4Runtime: each entry's prefix (shown
    as the name that produced its key), next hops and packet counter."""
    from controller.switch.tables import Fib
    from controller.switch.p4rt import SwitchError
    from dmsc.converge import FibReader
    idx = _name_index(net, switch)
    try:
        with FibReader.for_net(net, [switch]) as r:
            f = Fib(r.conns[switch])
            entries, counters = f.read(), f.counters()
    except SwitchError as exc:
        raise ActionError(f"{switch}: {exc}") from None
    rows = []
    for k, route in sorted(entries.items(), key=lambda kv: idx.lookup(*kv[0])):
        rows.append({"prefix": idx.lookup(*k), "key": names.format_key(*k),
                     "action": route.special or None,
                     "next_hops": [{"port": h.port, "mac": h.mac,
                                    "neighbour": net.topo.neighbour_on(switch, h.port)}
                                   for h in sorted(route.hops)],
                     "packets": counters.get(k, (0, 0))[0]})
    return {"switch": switch, "entries": rows}


def _state(net, switch: str):
    """The switch's control state: from its agent or, in the central mode,
    from the central controller's view of it."""
    if getattr(net, "central", None) is not None:
        if not net.central.alive():
            raise ActionError("the central controller is not running (restart_central)")
        try:
            return net.control_state(switch)
        except Exception as exc:            # gRPC errors of the controller's client
            raise ActionError(f"the central controller does not answer: {exc}") from None
    from controller.agent.admin_client import AdminError
    app = live_agent_of(net, switch)
    try:
        with app.admin() as c:
            return c.state()
    except AdminError as exc:
        raise ActionError(f"the agent of {switch} does not answer: {exc}") from None


@action
def lsdb(net, switch: Switch) -> dict:
    """A switch's LSDB (one row per LSA) and its neighbours, from its agent
    (or the central controller's view of the switch)."""
    st = _state(net, switch)
    return {"switch": switch,
            "lsas": [{"origin": x.origin, "fragment": x.fragment, "seq": x.seq,
                      "lifetime_s": round(x.lifetime_ms / 1000, 1), "overload": x.overload,
                      "adjacencies": {a.neighbor: a.cost for a in x.adjacencies},
                      "prefixes": [p.prefix for p in x.prefixes]} for x in st.lsdb],
            "neighbours": [{"port": n.port, "router": n.router, "state": n.state,
                            "heard_s_ago": round(n.last_heard_age_s, 3)} for n in st.neighbors]}


@action
def rib(net, switch: Switch) -> dict:
    """A switch's RIB: each prefix, its origins, cost and next hops, from its
    agent (or the central controller's view of the switch)."""
    st = _state(net, switch)
    return {"switch": switch, "spf_runs": st.spf_runs, "fib_version": st.fib_version,
            "routes": [{"prefix": e.prefix, "origins": list(e.origins), "cost": e.cost,
                        "next_hops": [{"port": h.port, "neighbour": h.neighbor}
                                      for h in e.next_hops]} for e in st.rib]}


@action
def policy(net, switch: Switch) -> dict:
    """The SCSC policies in force on a switch (its agent's view)."""
    from controller.agent.admin_client import AdminError
    app = live_agent_of(net, switch)
    try:
        with app.admin() as c:
            rep = c.policies()
    except AdminError as exc:
        raise ActionError(f"the agent of {switch} does not answer: {exc}") from None
    return {"switch": switch, "scsc": rep.scsc, "version": rep.version,
            "policies": [{"service": p.dst, "from": p.src, "port": p.port, "mac": p.mac,
                          "instance": p.instance, "expires_in_s": round(p.expires_in_s, 1),
                          "packets": p.packets} for p in rep.policies]}
