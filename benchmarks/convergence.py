#!/usr/bin/env python3
"""Convergence of the distributed control plane on BMv2 in Mininet.

For Figure 2 and generated topologies (ring, grid, fat-tree; 16, 32 and 64
switches where the machine holds them):
* cold start: agents started -> every FIB (read over P4Runtime) equals SPF
  over the topology file (``cold_start_ms``, median over ``--cold-starts``), and
  when the last FIB write of it completed by the agents' own clocks
  (``cold_written_ms``: the read-back polls 64 switches in turn and lags; it
  starts once no agent has written its FIB for 2 s, by their counters, so that
  it takes no CPU from them while they converge);
and on Figure 2:
* one accepted prefix -> every FIB holds it (median of trials, each on a
  quiet network): timed by the agents' own clocks (when the last FIB write
  completed, CLOCK_MONOTONIC) and verified by reading every FIB back over
  P4Runtime; the read-back's own figure is printed beside it;
* link failure -> traffic restored: a pod calls /B/4 through the link that
  fails, **open loop** at 200 calls/s (one every 5 ms; traffic/loadgen.py: on
  schedule whatever the answers do, many in flight on a long path, every call
  recorded with its intended send time); the longest run of unanswered
  calls, from its first call's intended send time to the next answered one's,
  is the outage (``reroute_ms``, median of trials; a stalled generator cannot
  hide it: the calls it owed are in it, ``not_sent``); the cut -> the first
  answered call after it (``restored_ms``); also the time until the last FIB
  write;
* memory and steady CPU of each agent and each BMv2, both over the same
  ``--idle-s`` seconds right after the cold start (``idle_cpu_pct``: an
  agent's and a BMv2's together, % of a core a switch).
Each trial prints the wall-clock time of its cut, to find it in the agents'
logs (``--log-dir`` keeps them); ``--agent-arg`` passes more arguments to
every agent (``--agent-arg=--echoes-per-read --agent-arg=1``).

Waits poll with a deadline (controller.converge); the only sleeps space the
trials (a quiet network before each, a failure longer than two dead intervals).
Last line: ``prefix_to_fib_ms=<median> reroute_ms=<median> restored_ms=<median>
max_switches=<largest topology that converged> cold_start_ms=<median> cold_written_ms=<median>
idle_cpu_pct=<median> loop=open rate=<calls/s> fidelity=...``:
the medians of Figure 2 when it runs, else of the first topology with events
(``--topos ring:64 --events ring:64``). Run as root.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402
from openloop import through_event                                 # noqa: E402

from dmsc.converge import (FibReader, expected_fibs,  # noqa: E402
                                 wait_converged)
from topologies.generate import from_spec                      # noqa: E402
from topologies.emu.net import DmscNet                         # noqa: E402
from controller.agent.agent_command import _echo_ms               # noqa: E402
from topologies.emu.apps.bmv2_app import BUILDS                # noqa: E402
from topologies.emu.child_processes import cpu_seconds, rss_mb    # noqa: E402
from topologies.expected import served_prefixes                   # noqa: E402
from topologies.topo import Topology                           # noqa: E402

from controller.switch.artifacts import REPO_ROOT as ROOT  # noqa: E402
# > Config.backoff_max_ms (1.28 s at ring:64): the next trial starts on a quiet network
QUIET_S = 2.0
RATE = 200.0        # open-loop calls per second through the link that fails (one every 5 ms)
POLL_S = 0.05       # FIB read-back while an event converges. The time is taken from
                    # the agents' clocks (last FIB write), the read-back verifies it:
                    # reading every FIB every few ms took a core from the agents and
                    # doubled the figure it measured


def cpu_percent(groups: list[list[int]], seconds: float) -> list[float]:
    """CPU of each group of processes over the same ``seconds`` of a converged,
    idle network, in % of a core for the whole group."""
    before, t0 = [sum(cpu_seconds(p) for p in g) for g in groups], time.monotonic()
    time.sleep(seconds)
    dt = time.monotonic() - t0
    return [(sum(cpu_seconds(p) for p in g) - b) / dt * 100 for g, b in zip(groups, before)]


class DidNotConverge(Exception):
    def __init__(self, why: str, mem: dict | None):
        super().__init__(why)
        self.mem = mem


def usage(net: DmscNet, idle_s: float = 5.0) -> dict:
    """Memory and steady CPU of the control plane (every agent process: one
    per agent, or hosts of several) and of the BMv2s."""
    agents = sorted({a.pid for a in net.agents.values() if a.pid is not None})
    bmv2s = [net.switch(s).bmv2.pid for s in net.topo.switches()]
    rss = [rss_mb(p) for p in agents]
    agent_cpu, bmv2_cpu = cpu_percent([agents, bmv2s], idle_s)
    return {"agent_procs": len(agents), "agents": len(net.agents),
            "agent_total_mb": sum(rss), "agent_proc_mb": statistics.median(rss),
            "agent_proc_mb_max": max(rss), "agent_mb": sum(rss) / len(net.agents),
            "bmv2_mb": statistics.median(rss_mb(p) for p in bmv2s),
            "agent_cpu": agent_cpu / len(net.agents), "bmv2_cpu": bmv2_cpu / len(bmv2s),
            "idle_s": idle_s}


def describe(m: dict) -> str:
    return (f"control plane RSS {m['agent_total_mb']:.0f} MB in all ({m['agents']} agents in "
            f"{m['agent_procs']} processes: {m['agent_proc_mb']:.0f} MB median a process, "
            f"max {m['agent_proc_mb_max']:.0f}; {m['agent_mb']:.1f} MB an agent), BMv2 "
            f"{m['bmv2_mb']:.0f} MB median; steady CPU over {m['idle_s']:.0f} s per agent "
            f"{m['agent_cpu']:.2f}%, per BMv2 {m['bmv2_cpu']:.2f}% of a core, "
            f"{m['agent_cpu'] + m['bmv2_cpu']:.2f}% a switch")


COLD_COUNTERS = ("hello_sent", "adj_up", "lsa_originated", "lsa_flooded", "lsa_sent",
                 "lsa_retransmit", "lsa_newer", "lsa_same", "lsa_older", "lsa_acked",
                 "ack_frames_sent", "summaries_sent")


def control_traffic(net: DmscNet) -> str:
    """What the cold start cost in control frames: the agents' counters summed
    (every adjacency down by reason too), and the agents' and BMv2s' CPU so far."""
    total: dict[str, int] = {}
    spf = 0
    for name in net.topo.switches():
        with net.admin(name) as c:
            st = c.state()
        spf += st.spf_runs
        for k, v in st.counters.items():
            total[k] = total.get(k, 0) + v
    downs = {k[len("adj_down_"):]: v for k, v in sorted(total.items())
             if k.startswith("adj_down_") and v}
    agents = sorted({a.pid for a in net.agents.values() if a.pid is not None})
    bmv2s = [net.switch(s).bmv2.pid for s in net.topo.switches()]
    return (" ".join(f"{k}={total.get(k, 0)}" for k in COLD_COUNTERS) + f" spf_runs={spf}"
            + f" adj_down={downs or 0}"
            + f"; CPU so far: agents {sum(cpu_seconds(p) for p in agents):.1f} s, "
              f"BMv2s {sum(cpu_seconds(p) for p in bmv2s):.1f} s")


def cold_start(topo: Topology, run_dir: Path, timeout: float, ready_timeout: float | None,
               per_process: int | None = None, packet_io: str | None = None,
               hello_ms: int | None = None, bmv2_build: str = "default",
               agent_args=(), idle_s: float = 5.0):
    """(net, cold start seconds, usage); raises DidNotConverge, with the
    memory and CPU of whatever did start, when the agents do not all start
    within ``ready_timeout`` or the FIBs are not right within ``timeout``."""
    net = DmscNet(topo, run_dir, log_level=None, agents_per_process=per_process,
                  packet_io=packet_io, hello_ms=hello_ms, bmv2_build=bmv2_build)
    net.start()
    try:
        t0 = time.monotonic()
        try:
            net.start_agents(agent_args, wait=False)
            net.wait_agents_ready(ready_timeout)
            net.agents_ready_s = time.monotonic() - t0
            net.override_pod_prefixes()      # operator override: routing alone is timed
            # the agents' FIB writes first, by their cheap counters: reading 64 FIBs
            # over and over while they converge took CPU from them (the read-back
            # below then confirms what they wrote, mostly in one pass)
            wait_quiet(net, t0, timeout)
            with FibReader.for_net(net) as reader:
                # Reading every FIB costs CPU the agents need: poll cold starts
                # (seconds long) gently, 50 ms per 8 switches.
                poll = 0.05 * max(1, len(net.topo.switches()) / 8)
                t_wait = time.monotonic() - t0
                right = wait_converged(reader, expected_fibs(net.topo), timeout=timeout, poll=poll)
                net.last_right_s = t_wait + right
            # the agents' own clocks: when the last FIB write completed (the read-back
            # above confirms the FIBs right; its polls of 64 switches lag by seconds)
            net.cold_written_s = last_write_ms(net, t0) / 1000
        except Exception as exc:
            try:
                mem = usage(net)
            except (OSError, statistics.StatisticsError):
                mem = None
            raise DidNotConverge(str(exc).splitlines()[0][:200], mem) from None
        cold = time.monotonic() - t0
        net.cold_traffic = control_traffic(net)     # before usage() idles for 10 s
        return net, cold, usage(net, idle_s)
    except BaseException:
        net.stop()
        raise


WRITES_QUIET_S = 2.0    # no FIB write anywhere for this long: the agents are done (for now)


def wait_quiet(net: DmscNet, t0: float, timeout: float, every: float = 0.5,
               since: float | None = None) -> None:
    """Until every agent has written its FIB at least once (and some agent
    after ``since``, when given) and none has written for WRITES_QUIET_S (by their
    own clocks), polling their counters (not their FIBs) every ``every`` s;
    returns at ``timeout`` after ``t0`` regardless (the read-back that follows
    says what is wrong)."""
    clients = {}                      # one channel per agent for the whole wait
    try:
        while time.monotonic() - t0 < timeout:
            last, all_written = 0.0, True
            for name in net.topo.switches():
                try:
                    if name not in clients:
                        clients[name] = net.admin(name)
                    st = clients[name].state(counters_only=True)
                except Exception:
                    all_written = False
                    break
                all_written &= st.fib_version > 0
                last = max(last, st.fib_written_at)
            if all_written and (since is None or last > since) \
                    and time.monotonic() - last >= WRITES_QUIET_S:
                return
            time.sleep(every)
    finally:
        for c in clients.values():
            c.close()


def last_write_ms(net: DmscNet, t0: float) -> float:
    """When the last FIB write after ``t0`` completed, by the agents' own
    CLOCK_MONOTONIC (the same clock in every process here)."""
    last = 0.0
    for name in net.topo.switches():
        with net.admin(name) as c:
            last = max(last, c.state(counters_only=True).fib_written_at)
    return (last - t0) * 1000


class Plan:
    """Where the events happen: the SG (and its pod) that accepts the new
    prefix; the pod that calls, the instance it calls and the link that fails
    under that traffic. Figure 2: sg2/pod2; pod1 -> /B/4 over sg1-sr3.
    A generated topology: the first pod's SG accepts; the pod calls the
    farthest instance reached through a single first hop of its SG, and that
    first link fails (so every call crosses it); where every pair has
    equal-cost first hops (a fat-tree), the farthest pair's first one, and the
    calls may be hashed onto the other (said in the output)."""

    def __init__(self, topo: Topology):
        self.prefix_pod = "pod2" if "pod2" in topo.pods() else topo.pods()[0]
        self.prefix_sg = topo.gateway(self.prefix_pod)
        if {"sg1", "sr3", "pod1"} <= set(topo.graph) and "/B/4" in served_prefixes(topo):
            self.src_pod, self.dst, self.link = "pod1", "/B/4", ("sg1", "sr3")
            self.single = True
        else:
            self._generated(topo)
        self.src = topo.instances(self.src_pod)[0]

    def _generated(self, topo: Topology) -> None:
        import networkx as nx
        core = topo.core_graph()
        owners = {p: pods for p, pods in served_prefixes(topo).items() if len(pods) == 1}
        best = None
        for pod in topo.pods():
            sg = topo.gateway(pod)
            dist = nx.single_source_dijkstra_path_length(core, sg, weight="cost")
            for prefix, (dpod,) in sorted(owners.items()):
                dsg = topo.gateway(dpod)
                if dsg == sg or prefix not in topo.instances(dpod):
                    continue
                firsts = sorted({p[1] for p in nx.all_shortest_paths(core, sg, dsg,
                                                                     weight="cost")})
                nh = firsts[0]
                cut = core.copy()
                cut.remove_edge(sg, nh)
                if not nx.is_connected(cut):
                    continue
                rank = (len(firsts) == 1, dist[dsg])     # a single first hop first
                if best is None or rank > best[0]:
                    best = (rank, pod, prefix, (sg, nh))
        if best is None:
            raise SystemExit(f"{topo.name}: no link to fail that leaves the network connected")
        (self.single, _d), self.src_pod, self.dst, self.link = best


def prefix_trials(net: DmscNet, trials: int, plan: Plan) -> list[tuple[float, float]]:
    topo = net.topo
    out = []
    prefixes = dict(served_prefixes(topo))
    sg, pod = plan.prefix_sg, plan.prefix_pod
    with FibReader.for_net(net) as reader:
        poll = max(POLL_S, 0.05 * len(topo.switches()) / 8)
        for i in range(trials):
            prefix = f"/bench/{i}"
            prefixes[prefix] = {pod}
            want = expected_fibs(topo, prefixes=prefixes)
            # one event on a quiet network: LSA generation and SPF back off
            # under churn (Config.backoff_max_ms), a lone change goes at once
            time.sleep(QUIET_S)
            with net.admin(sg) as c:
                c.state()                  # channel connected before the clock starts
                t0 = time.monotonic()
                c.accept_prefix(prefix, topo.port(sg, pod), topo.mac(pod, 0))
            observed = wait_converged(reader, want, timeout=30, poll=poll) * 1000
            out.append((last_write_ms(net, t0), observed))
        with net.admin(sg) as c:                  # leave the network as it was
            for i in range(trials):
                c.withdraw_prefix(f"/bench/{i}")
        wait_converged(reader, expected_fibs(topo), timeout=30, poll=poll)
    return out


def reroute_trials(net: DmscNet, trials: int, plan: Plan,
                   rate: float = RATE) -> tuple[list[float], list[float]]:
    """Link failure under open-loop calls: each trial's outage (ms, from the
    calls' intended send times) and the time to the last FIB write."""
    topo = net.topo
    outages, fib_times = [], []
    plan.restored = []
    core = topo.core_graph()
    core.remove_edge(*plan.link)
    want_down, want_up = expected_fibs(topo, core), expected_fibs(topo)
    for pod in topo.pods():
        net.start_pod(pod, announce=False)
    with FibReader.for_net(net) as reader:
        poll = max(POLL_S, 0.05 * len(topo.switches()) / 8)
        # The path works first, and its round trip sets the calls' time-out:
        # 50 ms, or 4 round trips on a long path (a 33-hop detour on ring:64),
        # so that a slow answer is not counted as an outage.
        rtts = []
        for _ in range(5):
            out = net.call(plan.src_pod, plan.src, plan.dst, deadline_s=30)
            if "rtt_ms" in out:
                rtts.append(out["rtt_ms"])
        call_timeout = max(0.05, 4 * max(rtts, default=0) / 1000)
        plan.call_timeout = call_timeout
        # open loop: one call every 5 ms, on schedule whatever the answers do
        # (a long path has many in flight), for as long as detection may take
        # (3 dead intervals and a second, at least 2 s) after half a second
        plan.rate = rate
        duration = 0.5 + max(2.0, 3 * net.dead_ms / 1000 + 1.0)
        for _ in range(trials):
            wall = []

            def cut():
                wall.append(time.time())          # for the agents' logs
                t_cut = time.monotonic()
                net.failures.link_down(*plan.link)
                # the agents' counters until their writes are done, then the
                # read-back: reading 64 FIBs every 0.4 s during the reroute took
                # half a core or more from the agents it timed (docs/routing.md)
                wait_quiet(net, t_cut, 30, since=t_cut)
                wait_converged(reader, want_down, timeout=30, poll=poll)
                return last_write_ms(net, t_cut)
            r = through_event(net, plan.src_pod, plan.dst, cut, src=plan.src, rate=plan.rate,
                              duration=duration, timeout=call_timeout)
            t0 = r["t0"]
            fib_times.append(r["event"])
            outages.append(r["outage_ms"])
            plan.restored.append(r["restored_ms"])
            c = r["calls"]
            back = "never" if r["restored_ms"] is None else f"{r['restored_ms']:.0f} ms"
            at = time.strftime("%H:%M:%S", time.localtime(wall[0])) + f".{int(wall[0] % 1 * 1000):03d}"
            print(f"    trial: cut at {at}, outage {r['outage_ms']:.0f} ms ({r['outage_calls']} calls "
                  f"unanswered), cut -> answered again {back}; "
                  f"from the cut on {c['ok']} of {c['scheduled']} scheduled calls answered "
                  f"({c['not_sent']} not sent)", flush=True)
            # a failure, not a late hello: down for over 2 dead intervals
            # (a neighbour heard again sooner was declared dead too early,
            # and its port's dead interval is raised)
            time.sleep(max(0.0, t0 + 2.5 * net.dead_ms / 1000 - time.monotonic()))
            net.failures.link_up(*plan.link)
            wait_converged(reader, want_up, timeout=30, poll=poll)
            time.sleep(QUIET_S)
    return outages, fib_times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topos", default="fig2,ring:16,grid:4x4,fat-tree:4,ring:32,grid:4x8,"
                                        "grid:8x8")
    ap.add_argument("--trials", type=int, default=7)
    ap.add_argument("--cold-starts", type=int, default=1,
                    help="cold starts of each topology (a fresh network each)")
    ap.add_argument("--events", default="fig2",
                    help="topologies (comma-separated, or 'all') on which the prefix and "
                         "reroute trials run too (default: fig2)")
    ap.add_argument("--agents-per-process", type=int, default=0,
                    help="agents sharing a process (1: one process each; default 0: by "
                         "network size, topologies.emu.apps.agent_app.agents_per_process)")
    ap.add_argument("--packet-io", choices=("stream", "cpu-port"), default=None,
                    help="agents' packet I/O (default: by network size, "
                         "topologies.emu.net.packet_io_default)")
    ap.add_argument("--hello-ms", type=int, default=None,
                    help="the agents' hello interval (default: by switches per core, "
                         "topologies.emu.apps.agent_app.agent_timers); the dead interval is 3 hellos")
    ap.add_argument("--bmv2", choices=sorted(BUILDS), default="default",
                    help="the BMv2 build the switches run (topologies/emu/apps/bmv2_app.py "
                         "BUILDS; perf: no logging macros, -O3)")
    ap.add_argument("--rate", type=float, default=RATE,
                    help="open-loop calls a second through the link that fails (at ring:64, "
                         "2026-12-06, no call was answered after the cut at the default 200, "
                         "echoes or not; 40 is about the closed loop's rate there)")
    ap.add_argument("--echo-ms", type=_echo_ms, default=None,
                    help="the agents' echo interval (data-plane liveness, controller/agent/"
                         "liveness.py): ms (0: hellos alone), 'auto' or 'fast' (half the "
                         "hello interval, 1 miss, a read every echo, hellos relaxed 4x); "
                         "default: the agents' (none)")
    ap.add_argument("--agent-arg", action="append", default=[], metavar="ARG",
                    help="one more argument for every agent (repeat it: --agent-arg=--echoes-"
                         "per-read --agent-arg=1; `python -m controller.agent --help`)")
    ap.add_argument("--reroute-trials", type=int, default=0,
                    help="link-failure trials (default: half of --trials, at least 3)")
    ap.add_argument("--idle-s", type=float, default=5.0,
                    help="the window of the steady (idle) CPU after each cold start, the "
                         "agents' and the BMv2s' over the same seconds")
    ap.add_argument("--log-dir", default=None,
                    help="keep each network's logs here (run<N>/), not in a temporary directory")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--ready-timeout", type=float, default=None,
                    help="for all agents to start (default: 30 s + 1.5 s per agent)")
    args = ap.parse_args(argv)
    agent_args = (() if args.echo_ms is None else ("--echo-ms", str(args.echo_ms))) \
        + tuple(args.agent_arg)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    if os.geteuid() != 0:
        print("convergence benchmark: needs root", file=sys.stderr)
        return 2
    prefix_ms = reroute_ms = restored_ms = reroute_rate = float("nan")
    cold_ms = cold_written_ms = idle_cpu = float("nan")     # of the last topology
    runs = 0
    summary_topo = "Figure 2"
    max_switches = 0
    events = set(args.events.split(","))
    for spec in args.topos.split(","):
        topo = Topology.load(ROOT / "topologies" / "fig2.yaml") if spec == "fig2" \
            else from_spec(spec)
        n = len(topo.switches())
        colds, colds_written, idles, ok = [], [], [], 0
        for trial in range(args.cold_starts):
            runs += 1
            with tempfile.TemporaryDirectory(prefix="dmsc-conv-") as d:
                if args.log_dir:
                    d = Path(args.log_dir) / f"run{runs}"
                    d.mkdir(parents=True, exist_ok=True)
                try:
                    net, cold, mem = cold_start(topo, Path(d), args.timeout, args.ready_timeout,
                                                args.agents_per_process or None,
                                                args.packet_io, args.hello_ms, args.bmv2,
                                                agent_args, args.idle_s)
                except DidNotConverge as exc:                 # report and go on
                    print(f"{spec:10s} {n:3d} switches: did not converge: {exc}", flush=True)
                    if exc.mem:
                        print(f"  meanwhile: {describe(exc.mem)}", flush=True)
                    continue
                try:
                    ok += 1
                    colds.append(cold)
                    colds_written.append(net.cold_written_s)
                    idles.append(mem["agent_cpu"] + mem["bmv2_cpu"])
                    print(f"{spec:10s} {n:3d} switches (hello {net.hello_ms} ms, dead "
                          f"{net.dead_ms} ms, {net.agents_per_process} agents a process, packet "
                          f"I/O {net.packet_io}): cold "
                          f"start to all FIBs correct {cold * 1000:8.0f} ms; {describe(mem)}",
                          flush=True)
                    print(f"  every agent ready after {net.agents_ready_s:.1f} s, every FIB written "
                          f"after {net.cold_written_s:.1f} s (the agents' clocks), the last FIB seen "
                          f"right after {net.last_right_s:.1f} s; control traffic "
                          f"until converged: {net.cold_traffic}", flush=True)
                    if trial == 0 and (spec in events or "all" in events):
                        plan = Plan(topo)
                        trials = prefix_trials(net, args.trials, plan)
                        p = [w for w, _o in trials]
                        pm = statistics.median(p)
                        print(f"  one accepted prefix at {plan.prefix_sg} -> all FIBs written: "
                              f"median {pm:.0f} ms (min {min(p):.0f}, max {max(p):.0f}; target "
                              f"<= 100 ms at Figure 2); seen by read-back: median "
                              f"{statistics.median(o for _w, o in trials):.0f} ms", flush=True)
                        outages, fibs = reroute_trials(
                            net, args.reroute_trials or max(3, args.trials // 2), plan, args.rate)
                        rm = statistics.median(outages)
                        back = [x for x in plan.restored if x is not None]
                        never = f", {len(plan.restored) - len(back)} never" \
                            if len(back) < len(plan.restored) else ""
                        print(f"  link {plan.link[0]}-{plan.link[1]} fails under calls "
                              f"{plan.src_pod} -> {plan.dst}"
                              f"{'' if plan.single else ' (ECMP: calls may avoid it)'}, open "
                              f"loop, {plan.rate:g} calls/s (time-out "
                              f"{plan.call_timeout * 1000:.0f} ms a call): median outage {rm:.0f} ms "
                              f"{sorted(outages)} (from the calls' intended send times); cut -> "
                              f"answered again median "
                              f"{statistics.median(back) if back else float('nan'):.0f} ms"
                              f"{never}"
                              f"; all FIBs written after median "
                              f"{statistics.median(fibs):.0f} ms (target <= 300 ms at Figure "
                              f"2, <= 1 s at 64 switches)", flush=True)
                        if spec == "fig2" or (prefix_ms != prefix_ms and "fig2" not in
                                              args.topos.split(",")):
                            # Figure 2's, else the first topology with events
                            prefix_ms, reroute_ms, reroute_rate = pm, rm, plan.rate
                            summary_topo = "Figure 2" if spec == "fig2" else spec
                            restored_ms = statistics.median(back) if back else float("nan")
                finally:
                    net.stop()
        if args.cold_starts > 1:
            print(f"{spec:10s} {n:3d} switches: converged in {ok} of {args.cold_starts} cold "
                  f"starts" + (f", median {statistics.median(colds):.1f} s (max "
                               f"{max(colds):.1f} s)" if colds else "")
                  + (f"; every FIB written after median {statistics.median(colds_written):.1f} s "
                     f"(the agents' clocks)" if colds_written else ""), flush=True)
        if colds:
            cold_ms = statistics.median(colds) * 1000
            cold_written_ms = statistics.median(colds_written) * 1000
            idle_cpu = statistics.median(idles)
        if ok == args.cold_starts:
            max_switches = max(max_switches, n)
    print(f"summary: {summary_topo} one prefix -> all FIBs {prefix_ms:.0f} ms; link cut -> traffic "
          f"restored {reroute_ms:.0f} ms (open loop, {reroute_rate:g} calls/s)", flush=True)
    print(f"prefix_to_fib_ms={prefix_ms:.0f} reroute_ms={reroute_ms:.0f} "
          f"restored_ms={restored_ms:.0f} max_switches={max_switches} "
          f"cold_start_ms={cold_ms:.0f} cold_written_ms={cold_written_ms:.0f} "
          f"idle_cpu_pct={idle_cpu:.2f} loop=open "
          f"rate={reroute_rate:g} " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
