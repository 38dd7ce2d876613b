"""``dmsc``: the testbed's command line.

    dmsc demo                 Figure 2 on BMv2 in Mininet: a call by name, A/1 -> B/4
    dmsc up                   bring a topology up with its agents and pods; Ctrl-C ends it
                              (up/demo --mode central: one central controller instead of
                              the agents, the baseline of docs/central.md)
    dmsc lsdb|rib|fib SWITCH  a running switch's LSDB / RIB (from its agent) / FIB
                              (read back over P4Runtime, keys shown as names)
    dmsc shell SWITCH         the p4runtime-shell command line for a running switch
    dmsc spa show|allow|revoke|add-key   the running SPA's registry and verdict counters,
                              authorizations added or revoked at run time
    dmsc pcap FILE [FILTER]   a capture decoded by the DMSC Wireshark dissector (tshark)
    dmsc scsc                 the SCSC's view: telemetry per SG and instance, decisions, why
    dmsc policies SWITCH      the SCSC policies in force on a switch
    dmsc degrade POD --service-ms N   slow a pod's instances down (0 restores)
    dmsc stats SWITCH         frames per port: kernel interface counters beside the P4
                              program's (lost before P4), drops and punts by reason
    dmsc up --cli --view      ... with the interactive CLI (interactive.py) and the live
                              view on 127.0.0.1 (view.py)
    dmsc topo FILE            a topology file as nodes, links and expected FIBs
    dmsc check                what this machine has and lacks for the testbed
    dmsc experiment FILE      run an experiment file (experiments/), write results/ and a
                              report (--both, --repeat N, --check, --report DIR)

Commands on a running network find it through RUN_DIR/network.json
(default runs/net, the run directory of ``dmsc up`` and ``dmsc demo``).

Library code raises; this entry point is the only place that prints and exits.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import grpc

from controller.agent.admin_client import AdminClient, AdminError
from controller.proto import scsc_pb2 as scsc_pb
from controller.proto import scsc_pb2_grpc as scsc_grpc
from controller.spa.spa_client import SpaClient, SpaError
from controller.switch.artifacts import REPO_ROOT as ROOT
from controller.switch.p4rt import SwitchError
from controller.switch.tables import Fib
from dmsc.converge import FibReader, NotConverged, expected_fibs, wait_converged
from dmsc import pcap
from dmsc.prerequisites import missing_prerequisites
from dmsc.static import program_static
from topologies.expected import reference_fibs, served_prefixes
from topologies.emu import running_networks as registry
from topologies.emu.linkcaps import netem_available
from topologies.emu.net import DmscNet
from topologies.generate import from_spec
from topologies.topo import Topology, TopologyError
from traffic.identity import Identity, IdentityError
from traffic.wire import names

console = Console()
DEFAULT_RUN = ROOT / "runs" / "net"


def shell_cmd(grpc_addr: str, device_id: int) -> str:
    """p4runtime-shell's command line, in its own venv (dmsc/p4shell.py)."""
    from dmsc.p4shell import shell_cmd as cmd
    return cmd(grpc_addr, device_id)


def cmd_check(args) -> int:
    missing = missing_prerequisites()
    console.print(f"netem (link delay/jitter): {'yes' if netem_available() else 'no (htb/tbf only)'}")
    if missing:
        for m in missing:
            console.print(f"[red]missing[/red] {m}")
        return 1
    console.print("[green]all prerequisites present[/green]")
    return 0


def load_topology(arg: str):
    """A topology file, or a generator spec such as ``ring:16`` or ``grid:4x4``."""
    if not Path(arg).exists() and ":" in arg:
        try:
            return from_spec(arg)
        except ValueError as exc:
            raise TopologyError(f"{arg}: no such file, and not a generator spec "
                                f"(ring:16, grid:4x4, fat-tree:4, line:8, random:32): {exc}") \
                from None
    return Topology.load(arg)


def cmd_topo(args) -> int:
    topo = load_topology(args.file)
    t = Table(title=f"{topo.name}: nodes")
    for col in ("node", "kind", "id", "instances / ports"):
        t.add_column(col)
    for n in topo.switches() + topo.pods():
        a = topo.graph.nodes[n]
        detail = (", ".join(topo.instances(n)) if a["kind"] == "pod" else
                  ", ".join(f"{topo.port(n, nb)}->{nb}" for nb in
                            sorted(topo.graph.neighbors(n), key=lambda x: topo.port(n, x))))
        t.add_row(n, a["kind"], str(a.get("id", "")), detail)
    console.print(t)
    fibs = reference_fibs(topo)
    f = Table(title="expected FIBs (SPF over the topology)")
    for col in ("switch", "prefix", "key", "next hops"):
        f.add_column(col)
    for s in topo.switches():
        for p, hops in sorted(fibs[s].items()):
            f.add_row(s, p, names.format_key(*names.prefix_key(p)),
                      ", ".join(f"port {h.port} ({topo.neighbour_on(s, h.port)})"
                                for h in sorted(hops)))
    console.print(f)
    return 0


def _load_net_state(run_dir) -> dict:
    path = Path(run_dir) / "network.json"
    if not path.exists():
        raise RuntimeError(f"no running network described in {path} (start one with `dmsc up`)")
    state = json.loads(path.read_text())
    if state.get("stopped"):
        raise RuntimeError(f"the network described in {path} ({state.get('topology_name')}) "
                           f"was stopped at {state['stopped']}")
    if "pid" in state and not registry.alive(state):
        raise RuntimeError(f"the network described in {path} ({state.get('topology_name')}, "
                           f"pid {state['pid']}) is no longer running")
    return state


def _switch_info(args) -> tuple[dict, dict]:
    state = _load_net_state(args.run_dir)
    if args.switch not in state["switches"]:
        raise RuntimeError(f"no switch {args.switch!r}; have {', '.join(state['switches'])}")
    return state, {**state["switches"][args.switch], "name": args.switch,
                   "central": state.get("central")}


def cmd_shell(args) -> int:
    _state, info = _switch_info(args)
    print(shell_cmd(info["grpc_addr"], info["device_id"]))
    return 0


def _agent_state(info):
    if info.get("central"):       # the central mode: the controller's view of the switch
        from controller.central.admin_client import CentralClient
        with CentralClient(info["central"]) as c:
            return c.switch_state(info["name"])
    if not info.get("admin_addr"):
        raise RuntimeError("this network runs without agents (static FIBs)")
    with AdminClient(info["admin_addr"]) as c:
        return c.state()


def cmd_spa(args) -> int:
    if args.action in ("allow", "revoke") and not args.prefix:
        raise RuntimeError(f"spa {args.action} needs a prefix")
    if args.action == "allow" and not args.keys:
        raise RuntimeError("spa allow needs --keys (key names of the registry)")
    if args.action == "add-key" and not (args.name and args.key_file):
        raise RuntimeError("spa add-key needs --name and --key-file")
    state = _load_net_state(args.run_dir)
    if not state.get("spa"):
        raise RuntimeError("this network runs without an SPA")
    with SpaClient(state["spa"]) as spa:
        if args.action == "allow":
            spa.authorize(names.normalize(args.prefix), args.max_depth, args.keys)
            depth = "exactly" if args.max_depth is None else f"max depth {args.max_depth}"
            console.print(f"authorized {args.prefix} ({depth}) to {', '.join(args.keys)}")
        elif args.action == "revoke":
            spa.revoke(names.normalize(args.prefix))
            console.print(f"revoked {args.prefix}: SGs withdraw what it covered within "
                          f"their recheck interval")
        elif args.action == "add-key":
            ident = Identity.load(args.key_file)
            spa.add_key(args.name, ident.public_raw)
            console.print(f"key {args.name} added ({ident.key_id})")
        view = spa.show()
    t = Table(title=f"SPA at {spa.addr}: authorizations (registry {view.source})")
    for col in ("prefix", "max depth", "keys"):
        t.add_column(col)
    for a in view.authorizations:
        t.add_row(a.prefix, str(a.max_depth), ", ".join(a.keys))
    console.print(t)
    k = Table(title="keys")
    for col in ("name", "key id"):
        k.add_column(col)
    for e in view.keys:
        k.add_row(e.name, e.key_id)
    console.print(k)
    c = Table(title="verdicts and refusals")
    for col in ("counter", "count"):
        c.add_column(col)
    for name, v in sorted(view.counters.items()):
        c.add_row(name, str(v))
    console.print(c)
    return 0


def cmd_scsc(args) -> int:
    state = _load_net_state(args.run_dir)
    if not state.get("scsc"):
        raise RuntimeError("this network runs without an SCSC (dmsc up --probe-ms 100)")
    try:
        with grpc.insecure_channel(state["scsc"]) as ch:
            v = scsc_grpc.ScscStub(ch).View(scsc_pb.Empty(), timeout=3)
    except grpc.RpcError as exc:
        raise RuntimeError(f"SCSC at {state['scsc']}: {exc.code().name}") from None
    console.print(f"SCSC at {state['scsc']}: routers (from the LSDB) {', '.join(v.routers)}; "
                  f"thresholds {dict(v.thresholds)}")
    t = Table(title="telemetry (each SG's probes)")
    for col in ("SG", "instance", "delay ms", "jitter ms", "loss", "bandwidth Mbit/s",
                "path (switch ids)", "age s", "violates"):
        t.add_column(col)
    for x in v.telemetry:
        m = x.path
        t.add_row(x.sg, m.instance, f"{m.delay_ms:.1f}", f"{m.jitter_ms:.1f}", f"{m.loss:.0%}",
                  f"{m.bandwidth_mbps:.1f}" if m.bandwidth_mbps else "?",
                  " ".join(map(str, m.path)), f"{x.age_s:.1f}", x.violation or "")
    console.print(t)
    d = Table(title="decisions")
    for col in ("SG", "service", "SPF default", "steered to", "path", "why"):
        d.add_column(col)
    for x in v.decisions:
        d.add_row(x.sg, x.service, x.default_instance, x.chosen or "-", " ".join(x.path), x.why)
    console.print(d)
    console.print({k: c for k, c in sorted(v.counters.items())})
    return 0


def cmd_policies(args) -> int:
    _state, info = _switch_info(args)
    if not info.get("admin_addr"):
        raise RuntimeError("this network runs without agents")
    with AdminClient(info["admin_addr"]) as c:
        rep = c.policies()
    t = Table(title=f"{args.switch}: SCSC policies ({rep.scsc or 'none'}, version {rep.version})")
    for col in ("service", "from", "port", "to MAC", "instance", "expires in s", "packets"):
        t.add_column(col)
    for p in rep.policies:
        t.add_row(p.dst, p.src, str(p.port), p.mac, p.instance, f"{p.expires_in_s:.1f}",
                  str(p.packets))
    console.print(t)
    return 0


def cmd_degrade(args) -> int:
    path = Path(args.run_dir) / "pods" / f"{args.pod}.control.json"
    if not path.parent.is_dir():
        raise RuntimeError(f"no running pods in {args.run_dir}")
    path.write_text(json.dumps({"service_ms": args.service_ms}))
    console.print(f"{args.pod}: service time {args.service_ms:g} ms")
    return 0


def cmd_pcap(args) -> int:
    return pcap.show(args.file, args.filter, verbose=args.verbose)


def cmd_lsdb(args) -> int:
    _state, info = _switch_info(args)
    st = _agent_state(info)
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
    _state, info = _switch_info(args)
    st = _agent_state(info)
    t = Table(title=f"{args.switch}: RIB (SPF runs {st.spf_runs}, FIB version {st.fib_version})")
    for col in ("prefix", "origins", "cost", "next hops"):
        t.add_column(col)
    for e in st.rib:
        t.add_row(e.prefix, ", ".join(e.origins), f"{e.cost:g}",
                  ", ".join(f"port {h.port} -> {h.neighbor}" for h in e.next_hops))
    console.print(t)
    return 0


def cmd_fib(args) -> int:
    state, info = _switch_info(args)
    idx = names.NameIndex()
    try:      # names for the keys: every prefix the agents (or the central controller) know of
        st = _agent_state(info)
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
    state, info = _switch_info(args)
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


def _bring_up(args, topo):
    """Network, then agents (or static FIBs), pod prefixes, pods; returns
    (net, static connections or {}, convergence seconds)."""
    net = DmscNet(topo, Path(args.run_dir), pcap=getattr(args, "pcap", False),
                  hello_ms=getattr(args, "hello_ms", None),
                  probe_ms=getattr(args, "probe_ms", 0),
                  agents_per_process=getattr(args, "agents_per_process", None),
                  bmv2_build=getattr(args, "bmv2", "default"),
                  packet_io="stream" if getattr(args, "mode", None) == "central"
                  else getattr(args, "packet_io", None))
    conns = {}
    try:
        t0 = time.monotonic()
        net.start()
        console.print(f"network up: {len(topo.switches())} BMv2 switches, {len(topo.pods())} "
                      f"pods, in {time.monotonic() - t0:.1f}s (logs: {args.run_dir})")
        for w in net.warnings:
            console.print(f"[yellow]warning:[/yellow] {w}")
        t0 = time.monotonic()
        if args.static:
            conns = program_static(net)
            net.write_state()
            console.print(f"static SPF FIBs written in {time.monotonic() - t0:.1f}s")
            for pod in topo.pods():
                net.start_pod(pod, announce=False)
            return net, conns
        if getattr(args, "mode", "distributed") == "mesh":
            net.start_spa()
            net.start_mesh()
            took = net.mesh.wait_endpoints(net.mesh.all_endpoints(), timeout=60)
            console.print(f"service mesh (docs/mesh.md): IPv4 on every switch, the mesh "
                          f"control plane on {net.mesh.control.addr}, HAProxy sidecars in "
                          f"{len(topo.pods())} pods; every endpoint in every sidecar "
                          f"{took:.2f}s after they started")
            return net, conns
        central = getattr(args, "mode", "distributed") == "central"
        console.print(f"{'central controller' if central else 'agents'}: hello {net.hello_ms} "
                      f"ms, dead interval {net.dead_ms} ms; leases {net.lease_s:g} s")
        net.start_spa()
        net.start_central() if central else net.start_agents()
        net.apply_overrides()
        if net.probe_ms:
            net.start_scsc()
            console.print(f"SCSC on {net.scsc_addr}: SGs probe every {net.probe_ms} ms")
        console.print(f"SPA on {net.spas[0].addr} (registry {net.registry_file}); "
                      + (f"central controller on {net.central.admin_addr}" if central else
                         f"{len(topo.switches())} agents") + f" up in {time.monotonic() - t0:.1f}s")
        t_pods = time.monotonic()
        for pod in topo.pods():
            net.start_pod(pod)
        net.wait_announced(timeout=60)
        with FibReader.for_net(net) as reader:
            try:
                wait_converged(reader, expected_fibs(topo), timeout=60)
            except NotConverged as exc:
                raise NotConverged(
                    f"{exc}\nThe agents' logs are in {args.run_dir}/agents (look for "
                    f"'adjacency down'). On a loaded machine try a longer --hello-ms "
                    f"(now {net.hello_ms}), --packet-io cpu-port, or a smaller topology.") from None
        console.print(f"pods started; every announcement accepted and every FIB equal to SPF "
                      f"over the topology {time.monotonic() - t_pods:.2f}s later")
        net.t_pods = t_pods
        return net, conns
    except BaseException:
        for c in conns.values():
            c.close()
        net.stop()
        raise


def announcement_paths(net, t0: float) -> Table:
    """Each accepted prefix's way in: pod -> SG -> SPA verdict -> LSA -> FIBs,
    in ms after ``t0`` (the agents' CLOCK_MONOTONIC is ours)."""
    states = {s: net.control_state(s) for s in net.topo.switches()}
    fib_done = max(st.fib_written_at for st in states.values())
    t = Table(title="announcements: pod -> SG -> SPA -> LSA -> every FIB "
                    "(ms after the pods started)")
    for col in ("pod", "prefix", "SG (port)", "SPA verdict", "SPA round trip",
                "accepted, in the LSA", "all FIBs written"):
        t.add_column(col)
    for sg in net.topo.switches():
        for h in states[sg].held:
            pod = net.topo.neighbour_on(sg, h.port)
            verdict = "operator override" if h.key_id == "operator" else "valid"
            t.add_row(pod or "?", h.prefix, f"{sg} ({h.port})", verdict, f"{h.spa_ms:.1f}",
                      f"+{(h.accepted_at - t0) * 1000:.0f}", f"+{(fib_done - t0) * 1000:.0f}")
    return t


def _prerequisites_ok(what: str) -> bool:
    missing = missing_prerequisites()
    for m in missing:
        console.print(f"[red]cannot {what}, missing:[/red] {m}")
    return not missing


def _tear_down(net, conns, run_dir) -> None:
    for c in conns.values():
        c.close()
    net.stop()
    (Path(run_dir) / "network.json").unlink(missing_ok=True)
    console.print("network stopped and cleaned up")


def cmd_up(args) -> int:
    if not _prerequisites_ok("start"):
        return 2
    topo = load_topology(args.topo)
    if getattr(args, "mode", None) == "mesh" and (args.view or args.cli):
        console.print("[red]--view and --cli show DMSC's control plane; the mesh mode has "
                      "none of it (docs/mesh.md)[/red]")
        return 2
    net, conns = _bring_up(args, topo)
    view = None
    try:
        if args.view:
            from dmsc.live_view import ViewServer
            view = ViewServer(net, args.view_port).start()
            console.print(f"live view: {view.url}")
        if args.cli:
            from dmsc.interactive import DmscCLI
            console.print("DMSC CLI: 'help' lists the commands, 'exit' tears the network down")
            # Mininet's prompt takes KeyboardInterrupt (Ctrl-C) as "cancel this
            # command": SIGTERM must end it instead, through the teardown below
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
            DmscCLI(net)
            return 0
        console.print("running. Inspect with: dmsc lsdb|rib|fib|stats|shell <switch>"
                      + (f" --run-dir {args.run_dir}" if Path(args.run_dir) != DEFAULT_RUN else "")
                      + ". Ctrl-C stops it.")
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if view is not None:
            view.stop()
        _tear_down(net, conns, args.run_dir)


def _mesh_demo(net, src: str, dst: str, src_pod: str, method: str) -> int:
    """The demo's calls through the service mesh: by instance, then by service."""
    targets = [dst] + ([names.normalize("/" + names.components(dst)[0])]
                       if len(names.components(dst)) > 1 else [])
    for target in targets:
        out = net.mesh.call(src_pod, src, target, method, {"hello": "mesh"}, deadline_s=15.0)
        if "error" in out:
            console.print(f"[red]call {src} -> {target} failed:[/red] {out['error']}")
            return 1
        console.print(f"[green]{src} called {target} {method}()[/green] through its sidecar: "
                      f"result {out['result']} from [bold]{out['from']}[/bold], round trip "
                      f"{out['rtt_ms']} ms")
    st = net.mesh.stats()
    console.print(f"mesh control plane: {st.endpoints} endpoints, {st.changes} changes, "
                  f"{st.pushes} pushes to {st.subscribers} sidecars, {st.push_bytes:,} bytes")
    return 0


def cmd_demo(args) -> int:
    if not _prerequisites_ok("run the demo"):
        return 2

    topo = Topology.load(args.topo)
    src, dst = names.normalize(args.src), names.normalize(args.dst)
    src_pod = topo.pod_of(src)
    console.rule(f"DMSC demo: {topo.name} on BMv2 in Mininet")
    net, conns = _bring_up(args, topo)
    if net.mode == "mesh":
        try:
            return _mesh_demo(net, src, dst, src_pod, args.method)
        finally:
            _tear_down(net, conns, args.run_dir)
    try:
        if not args.static:
            console.print(announcement_paths(net, net.t_pods))
        with FibReader.for_net(net) as reader:
            for target in ([dst, names.normalize("/" + names.components(dst)[0])]
                           if len(names.components(dst)) > 1 else [dst]):
                before = {s: Fib(c).counters() for s, c in reader.conns.items()}
                out = net.call(src_pod, src, target, args.method, {"hello": "DMSC"},
                               deadline_s=15.0)
                if "error" in out:
                    console.print(f"[red]call {src} -> {target} failed:[/red] {out['error']}")
                    return 1
                kind = "instance" if target == dst else "service, anycast: the nearest instance"
                console.print(f"[green]{src} called {target} ({kind}) {args.method}()[/green]: "
                              f"result {out['result']} from [bold]{out['from']}[/bold], round "
                              f"trip {out['rtt_ms']} ms, {out['hops']} switches on the way back")
                table = Table(title=f"frames counted by each switch's FIB entries during the "
                                    f"call to {target}")
                for col in ("switch", "prefix", "packets"):
                    table.add_column(col)
                idx = names.NameIndex([src, target, out["from"]])
                for s, c in reader.conns.items():
                    for k, (pk, _b) in sorted(Fib(c).counters().items()):
                        delta = pk - before[s].get(k, (0, 0))[0]
                        if delta:
                            table.add_row(s, idx.lookup(*k), str(delta))
                console.print(table)
        console.print("inspect a switch while the network runs (`--keep`):")
        console.print("  sudo .venv/bin/dmsc fib sg1      (also lsdb, rib, shell; with --keep)")
        if args.keep:
            from dmsc.interactive import DmscCLI
            console.print("DMSC CLI (Mininet's, with fib, call, link down, kill...; 'help'): "
                          "'exit' tears the network down")
            DmscCLI(net)
        return 0
    finally:
        _tear_down(net, conns, args.run_dir)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="dmsc", description="DMSC testbed")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def net_opts(p, default_topo=True):
        if default_topo:
            p.add_argument("--topo", default=str(ROOT / "topologies" / "fig2.yaml"),
                           help="topology file, or a generator: ring:16, grid:4x4, fat-tree:4")
        p.add_argument("--run-dir", default=str(DEFAULT_RUN))
        p.add_argument("--static", action="store_true",
                       help="write SPF FIBs from the topology instead of running agents")
        p.add_argument("--pcap", action="store_true", help="write per-interface pcaps")
        p.add_argument("--probe-ms", type=int, default=0,
                       help="SGs probe the instances their pods call this often and report "
                            "to the SCSC, which steers around degraded ones (0: no SCSC)")
        p.add_argument("--mode", choices=("distributed", "central", "mesh"),
                       default="distributed",
                       help="distributed: one agent per switch (DMSC); central: one controller "
                            "computes and writes every FIB (the baseline, docs/central.md); "
                            "mesh: IPv4, HAProxy sidecars and one mesh control plane "
                            "(the service mesh the draft argues against, docs/mesh.md)")
        p.add_argument("--hello-ms", type=int, default=None,
                       help="agents' hello interval (dead interval: 3 hellos); default: "
                            "80 ms, more for networks larger than 4 switches per core")
        p.add_argument("--agents-per-process", type=int, default=None,
                       help="agents sharing a process (1: a process per switch); default: "
                            "by network size")
        p.add_argument("--bmv2", choices=("default", "perf"), default="default",
                       help="the BMv2 build: default (logs available) or perf (no logging "
                            "macros, -O3: about half the switch CPU; sudo python3 "
                            "scripts/toolchain.py --flavour perf builds it)")
        p.add_argument("--packet-io", choices=("stream", "cpu-port"), default=None,
                       help="agents' packet I/O: the P4Runtime stream, or a veth on the CPU "
                            "port; default: by network size")

    d = sub.add_parser("demo", help="run the Figure 2 demo (root)")
    net_opts(d)
    d.add_argument("--src", default="/A/1")
    d.add_argument("--dst", default="/B/4")
    d.add_argument("--method", default="echo")
    d.add_argument("--keep", action="store_true", help="drop into the Mininet CLI")
    d.set_defaults(fn=cmd_demo)
    u = sub.add_parser("up", help="bring a topology up until Ctrl-C (root)")
    net_opts(u)
    u.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    u.add_argument("--cli", action="store_true",
                   help="the interactive CLI (Mininet's, with fib, call, link down, kill...); "
                        "'exit' tears the network down")
    u.add_argument("--view", action="store_true",
                   help="serve the live view (topology, traffic, failures, SCSC decisions) "
                        "on 127.0.0.1")
    u.add_argument("--view-port", type=int, default=0, help="the view's port (0: any free one)")
    u.set_defaults(fn=cmd_up)
    for name, fn, what in (("lsdb", cmd_lsdb, "LSDB and neighbours (from the agent)"),
                           ("rib", cmd_rib, "RIB (from the agent)"),
                           ("fib", cmd_fib, "FIB read back over P4Runtime"),
                           ("shell", cmd_shell, "p4runtime-shell command line")):
        p = sub.add_parser(name, help=f"a running switch's {what}")
        p.add_argument("switch")
        p.add_argument("--run-dir", default=str(DEFAULT_RUN))
        p.set_defaults(fn=fn)
    sp = sub.add_parser("spa", help="the running SPA: show, allow, revoke, add-key")
    sp.add_argument("action", choices=("show", "allow", "revoke", "add-key"))
    sp.add_argument("prefix", nargs="?", help="allow/revoke: the prefix")
    sp.add_argument("--max-depth", type=int, default=None,
                    help="allow: deepest prefix allowed under it (default: the prefix alone; "
                         "a max depth hands every name under it to every listed key)")
    sp.add_argument("--keys", nargs="+", default=[], help="allow: key names")
    sp.add_argument("--name", help="add-key: the key's name in the registry")
    sp.add_argument("--key-file", help="add-key: a PEM private key file (its public half is added)")
    sp.add_argument("--run-dir", default=str(DEFAULT_RUN))
    sp.set_defaults(fn=cmd_spa)
    sc = sub.add_parser("scsc", help="the SCSC's telemetry and decisions")
    sc.add_argument("--run-dir", default=str(DEFAULT_RUN))
    sc.set_defaults(fn=cmd_scsc)
    po = sub.add_parser("policies", help="the SCSC policies in force on a switch")
    po.add_argument("switch")
    po.add_argument("--run-dir", default=str(DEFAULT_RUN))
    po.set_defaults(fn=cmd_policies)
    st = sub.add_parser("stats", help="a switch's frames per port: kernel interface counters "
                                      "beside the P4 program's, drops and punts by reason")
    st.add_argument("switch")
    st.add_argument("--interval", type=float, default=0,
                    help="count over this many seconds instead of since the start")
    st.add_argument("--json", action="store_true", help="one JSON object (for scripts)")
    st.add_argument("--all", action="store_true", help="list reasons that counted nothing too")
    st.add_argument("--run-dir", default=str(DEFAULT_RUN))
    st.set_defaults(fn=cmd_stats)
    dg = sub.add_parser("degrade", help="raise a pod's service time (a degraded instance)")
    dg.add_argument("pod")
    dg.add_argument("--service-ms", type=float, required=True)
    dg.add_argument("--run-dir", default=str(DEFAULT_RUN))
    dg.set_defaults(fn=cmd_degrade)
    pc = sub.add_parser("pcap", help="decode a capture with the DMSC dissector (tshark)")
    pc.add_argument("file")
    pc.add_argument("filter", nargs="?", help='display filter, e.g. \'dmsc.dst_name == "/B/4"\'')
    pc.add_argument("-v", "--verbose", action="store_true", help="every field of every frame")
    pc.set_defaults(fn=cmd_pcap)
    t = sub.add_parser("topo", help="show a topology file and its expected FIBs")
    t.add_argument("file", help="topology file, or a generator such as ring:16")
    t.set_defaults(fn=cmd_topo)
    c = sub.add_parser("check", help="check this machine's prerequisites")
    c.set_defaults(fn=cmd_check)
    from dmsc.experiment import command as experiment_cmd
    experiment_cmd.add_parser(sub)
    args = ap.parse_args(argv)

    def on_sigterm(*_):
        raise KeyboardInterrupt   # so that every `finally` tears the network down
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:   # entry point: one clear line, not a traceback
        from dmsc.experiment.spec import ExperimentError
        if isinstance(exc, (SwitchError, TopologyError, names.InvalidName, RuntimeError,
                            ExperimentError,
                            AdminError, SpaError, IdentityError, NotConverged)):
            # one line whatever the terminal's width; the message is text, not markup
            console.print(f"dmsc {args.cmd}: {exc}", style="red", markup=False,
                          highlight=False, soft_wrap=True)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
