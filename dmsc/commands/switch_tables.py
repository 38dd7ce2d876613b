"""``dmsc lsdb|rib|fib|shell|stats SWITCH``: a running switch's LSDB and
neighbours, RIB (from its agent, or the central controller's view of it),
FIB read back over P4Runtime (keys shown as names), the p4runtime-shell
command line for it, and its frames per port (kernel beside P4, drops and
punts by reason).
"""
from __future__ import annotations

import json
import time

from rich.table import Table

from controller.switch.tables import Fib
from dmsc.commands import console
from dmsc.commands.running_network import agent_state, switch_info
from dmsc.converge import FibReader
from topologies.expected import served_prefixes
from topologies.topo import Topology
from traffic.wire import names


def shell_cmd(grpc_addr: str, device_id: int) -> str:
    """p4runtime-shell's command line, in its own venv (dmsc/p4shell.py)."""
    from dmsc.p4shell import shell_cmd as cmd
    return cmd(grpc_addr, device_id)


def cmd_shell(args) -> int:
    _state, info = switch_info(args)
    print(shell_cmd(info["grpc_addr"], info["device_id"]))
    return 0


def cmd_lsdb(args) -> int:
    _state, info = switch_info(args)
    st = agent_state(info)
    t = Table(title=f"{args.switch}: LSDB ({len(st.lsdb)} LSAs)")
    for col in ("origin", "frag", "seq", "life s", "overload", "adjacencies", "prefixes"):
        t.add_column(col)
    for lsa in st.lsdb:
        t.add_row(lsa.origin, str(lsa.fragment), str(lsa.seq), f"{lsa.lifetime_ms / 1000:.0f}",
                  "yes" if lsa.overload else "",
                  ", ".join(f"{a.neighbor}({a.cost})" for a in lsa.adjacencies),
                  ", ".join(f"{p.prefix}@{p.port}" for p in lsa.prefixes))
    console.print(t)
    nb = Table(title="neighbours")
    for col in ("port", "router", "mac", "state", "heard s ago", "dead ms"):
        nb.add_column(col)
    for n in st.neighbors:
        nb.add_row(str(n.port), n.router, n.mac, n.state, f"{n.last_heard_age_s:.2f}",
                   str(n.dead_interval_ms))
    console.print(nb)
    return 0


def cmd_rib(args) -> int:
    _state, info = switch_info(args)
    st = agent_state(info)
    t = Table(title=f"{args.switch}: RIB (SPF runs {st.spf_runs}, FIB version {st.fib_version})")
    for col in ("prefix", "origins", "cost", "next hops"):
        t.add_column(col)
    for e in st.rib:
        t.add_row(e.prefix, ", ".join(e.origins), f"{e.cost:g}",
                  ", ".join(f"port {h.port} -> {h.neighbor}" for h in e.next_hops))
    console.print(t)
    return 0


def cmd_fib(args) -> int:
    state, info = switch_info(args)
    idx = names.NameIndex()
    try:      # names for the keys: every prefix the agents (or the central controller) know of
        st = agent_state(info)
        for lsa in st.lsdb:
            for p in lsa.prefixes:
                idx.add(p.prefix)
        for e in st.rib:
            idx.add(e.prefix)
    except RuntimeError:
        for p in served_prefixes(Topology.load(state["topology"])):
            idx.add(p)
    with FibReader({args.switch: (info["grpc_addr"], info["device_id"])}) as r:
        sw = r.conns[args.switch]
        fib = Fib(sw)
        entries, counters = fib.read(), fib.counters()
    t = Table(title=f"{args.switch}: FIB read over P4Runtime from {info['grpc_addr']}")
    for col in ("prefix", "key", "action", "packets"):
        t.add_column(col)
    for k, route in sorted(entries.items(), key=lambda kv: idx.lookup(*kv[0])):
        action = route.special or ", ".join(f"port {h.port} ({h.mac})" for h in sorted(route.hops))
        t.add_row(idx.lookup(*k), names.format_key(*k), action, str(counters.get(k, (0, 0))[0]))
    console.print(t)
    return 0


def cmd_stats(args) -> int:
    from dmsc import stats
    state, info = switch_info(args)
    topo = Topology.load(state["topology"])
    addrs = {args.switch: (info["grpc_addr"], info["device_id"])}
    before = stats.read_stats(addrs, topo)[args.switch]
    if not args.interval:
        st, what = before, "since the pipeline was pushed (P4) / the interface was made (kernel)"
    else:
        time.sleep(args.interval)           # the window the user asked for
        st, what = stats.read_stats(addrs, topo)[args.switch].since(before), \
            f"over the last {args.interval:g} s"
    if args.json:
        print(json.dumps(st.to_dict()))
        return 0
    console.print(f"{args.switch}: counts {what}")
    for t in stats.tables(st, all_reasons=args.all):
        console.print(t)
    return 0
