"""``dmsc up`` and ``dmsc demo``: a network brought up (BMv2 switches in
Mininet, the SPA, agents or the central controller, the SCSC when the SGs
probe, announcing pods) until every announcement is accepted and every FIB
equals SPF; then ``up`` runs until Ctrl-C (with ``--cli`` the interactive
CLI, with ``--view`` the live view), ``demo`` makes a call by name and shows
what every switch counted. Either tears the network down, whatever happens.
"""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from rich.table import Table

from controller.switch.tables import Fib
from dmsc.commands import console
from dmsc.commands.offline import load_topology
from dmsc.commands.running_network import DEFAULT_RUN
from dmsc.converge import FibReader, NotConverged, expected_fibs, wait_converged
from dmsc.prerequisites import missing_prerequisites
from dmsc.static import program_static
from topologies.emu.net import DmscNet
from topologies.topo import Topology
from traffic.wire import names


def _bring_up(args, topo):
    """Network, then agents (or static FIBs), pod prefixes, pods; returns
    (net, the static FIBs' connections or {})."""
    net = DmscNet(topo, Path(args.run_dir), pcap=getattr(args, "pcap", False),
                  hello_ms=getattr(args, "hello_ms", None),
                  lease_s=getattr(args, "lease_s", None) or 6.0,
                  agent_args=(() if getattr(args, "echo_ms", None) is None
                              else ("--echo-ms", str(args.echo_ms))),
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
