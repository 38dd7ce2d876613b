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
                              view on 127.0.0.1 (live_view.py)
    dmsc topo FILE            a topology file as nodes, links and expected FIBs
    dmsc check                what this machine has and lacks for the testbed
    dmsc experiment FILE      run an experiment file (experiments/), write results/ and a
                              report (--both, --repeat N, --check, --report DIR)

Commands on a running network find it through RUN_DIR/network.json
(default runs/net, the run directory of ``dmsc up`` and ``dmsc demo``).

This module is the command line alone: its options, and the one place that
prints an error and exits. Each command's code is in dmsc/commands/, by group:

    up, demo                       dmsc/commands/up_demo.py
    lsdb, rib, fib, shell, stats   dmsc/commands/switch_tables.py
    spa                            dmsc/commands/spa_admin.py
    scsc, policies, degrade        dmsc/commands/scsc_steering.py
    topo, check, pcap              dmsc/commands/offline.py
    experiment                     dmsc/experiment/command.py

Library code raises; this entry point is the only place that prints and exits.
"""
from __future__ import annotations

import argparse
import signal
import sys

from controller.agent.admin_client import AdminError
from controller.spa.spa_client import SpaError
from controller.switch.artifacts import REPO_ROOT as ROOT
from controller.switch.p4rt import SwitchError
from dmsc.commands import console
from dmsc.commands.offline import cmd_check, cmd_pcap, cmd_topo
from dmsc.commands.running_network import DEFAULT_RUN
from dmsc.commands.scsc_steering import cmd_degrade, cmd_policies, cmd_scsc
from dmsc.commands.spa_admin import cmd_spa
from dmsc.commands.switch_tables import cmd_fib, cmd_lsdb, cmd_rib, cmd_shell, cmd_stats
from dmsc.commands.up_demo import cmd_demo, cmd_up
from dmsc.converge import NotConverged
from topologies.topo import TopologyError
from traffic.identity import IdentityError
from traffic.wire import names


def echo_ms_arg(text: str):
    """--echo-ms: the agents' own check (a whole number of ms, or 'auto')."""
    from controller.agent.agent_command import _echo_ms
    return _echo_ms(text)


def lease_arg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds, e.g. 30") from None
    if not 1 <= v <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: from 1 to 3600 s")
    return v

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
        p.add_argument("--echo-ms", default=None, type=echo_ms_arg,
                       help="data-plane echoes on every core port this often (ms, "
                            "'auto', or 'fast': half the hello interval, 1 miss, hellos "
                            "relaxed 4x; default: none): link liveness without the far agent "
                            "(docs/routing.md, 'Echo liveness')")
        p.add_argument("--lease-s", type=lease_arg, default=None,
                       help="the SGs' announcement lease (default 6 s; at 1,000 instances "
                            "30 s: pods renew at about half of it)")
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
