#!/usr/bin/env python3
"""Latency against offered load, open loop, up to the knee (BMv2, Mininet).

On Figure 2, pod1 calls /B/4 (three switches each way: sg1, sr3, sg4) with the
open-loop load generator (traffic/loadgen.py: calls on a schedule whatever the
answers do, each latency from its intended send time, HdrHistogram), one step
per offered rate, each ``--step-s`` long, rates rising until the knee: the
first rate at which the p99 latency is at least twice the p99 at the lowest
rate, or fewer than 99 % of the scheduled calls are answered. Then one more
step at half the knee. The same for the distributed mode (an agent per
switch) and the central mode (one controller): the data path is the same
BMv2 pipeline, the control plane beside it differs.

Each step prints offered and answered rate, p50/p99/p99.9, the calls not sent
and the generator's own lateness p99 (a generator late by more than a few ms
is the bottleneck, not the network: the line says so). A plot of the
percentiles against offered load goes to ``--plot``.

``--instances N`` (e.g. 1,000; 0, the default, skips it) then measures many instances
and their churn, distributed mode, on Figure 2's switches with ``--pods`` pods
(64 by default, 16 a SG: topologies/generate.py's population
``fig2:pods=64,instances=1000,services=100``): N instances over
``--services`` services (``/s<k>/<j>``, a service's instances on different
pods), announced and authorized like any other, with ``--lease-s`` leases and
``--hello-ms`` hellos (200 ms: 64 pods share the two cores with the switches); the
cold start to every FIB complete (every switch's FIB equal to SPF over all
of them), the SPA's verdicts per second over it, LSA fragments in each
agent's LSDB, FIB entries per switch, the agents' memory, and the SGs'
counters that say why a run did not converge (shed, expired leases,
adjacency drops). Then churn: for ``--churn-s`` seconds, ``--churn-per-s``
instance changes a second on p3 (20 instances of ``/churn`` added, then
alternately one added and the oldest withdrawn, so each lives about 2 s at
20 changes a second: a control file the pod reads, as autoscaling would start
and stop instances), while p1 calls two stable instances (on p2 and p4,
other SGs) open loop at 50/s each: calls to stable instances lost, FIB writes
per second (every switch, from the writers' FIB log), and each added
instance's time from its announcement (the control file's write) to in every
FIB (p50/p99).

Last line: ``knee_rps=... p99_ms_half_knee=... base_p99_ms=... central_knee_rps=...
central_p99_ms_half_knee=... instances=... cold_start_s=... churn_per_s=...
churn_lost=... announce_p99_ms=...`` (knee and p99 of the distributed mode
first; a key is printed only when it was measured). Run as root.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dmsc import fidelity                                          # noqa: E402

from controller.switch import fiblog                                 # noqa: E402
from controller.switch.artifacts import REPO_ROOT as ROOT             # noqa: E402
from dmsc.converge import FibReader, bring_up, expected_fibs, wait_converged   # noqa: E402
from dmsc.experiment.runner import processes, proc_usage            # noqa: E402
from traffic.wire import names                                       # noqa: E402
from topologies.emu.child_processes import die_with_parent, py_env   # noqa: E402
from topologies.emu.net import DmscNet                               # noqa: E402
from topologies.generate import from_spec                            # noqa: E402
from topologies.topo import Topology                                 # noqa: E402

LATE_WARN_MS = 5.0           # the generator's lateness p99 above which it, not the network, limits


def start_load(net, rate: float, seconds: float, timeout: float, dst: str = "/B/4",
               pod: str = "pod1", src: str = "/A/1"):
    t = net.topo
    cmd = [sys.executable, "-m", "traffic.loadgen", "--iface", t.intf_name(pod, 0),
           "--src", src, "--mac", t.mac(pod, 0), "--rate", str(rate),
           "--duration", str(seconds), "--timeout", str(timeout), dst, "echo"]
    return net.host(pod).popen(die_with_parent(cmd), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())


def step(net, rate: float, seconds: float, timeout: float) -> dict:
    proc = start_load(net, rate, seconds, timeout)
    try:
        out, err = proc.communicate(timeout=seconds + timeout + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    try:
        s = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"load generator: {err.decode()[-400:]}") from None
    s["offered"] = rate
    s["answered_rate"] = round(s["ok"] / seconds, 1)
    return s


def show(mode: str, s: dict) -> None:
    late = s["late"]["p99_ms"]
    print(f"{mode:11s} offered {s['offered']:6.0f}/s answered {s['answered_rate']:7.1f}/s "
          f"({s['answered_pct']:6.2f} %)  p50 {s['p50_ms']} p99 {s['p99_ms']} "
          f"p99.9 {s['p999_ms']} ms  not sent {s['not_sent']}  in flight <= "
          f"{s['max_in_flight']}  generator late p99 {late} ms"
          + ("  (generator-limited)" if late is not None and late > LATE_WARN_MS else ""),
          flush=True)


def sweep(mode: str, rates: list[float], seconds: float, timeout: float) -> dict:
    topo = Topology.load(ROOT / "topologies" / "fig2.yaml")
    steps: list[dict] = []
    knee = None
    with tempfile.TemporaryDirectory(prefix=f"dmsc-load-{mode}-") as d:
        net = bring_up(DmscNet(topo, Path(d)), timeout=60, mode=mode)
        try:
            step(net, rates[0], 2.0, timeout)                     # warm-up, not counted
            for rate in rates:
                s = step(net, rate, seconds, timeout)
                show(mode, s)
                steps.append(s)
                base = steps[0]["p99_ms"]
                if s["answered_pct"] < 99.0 or (base and s["p99_ms"] is not None
                                                and s["p99_ms"] >= 2 * base):
                    knee = s
                    break
            half = None
            if knee is not None:
                half = step(net, knee["offered"] / 2, seconds, timeout)
                show(mode, half)
        finally:
            net.stop()
    return {"mode": mode, "steps": steps, "knee": knee, "half": half}


# -- many instances and their churn ------------------------------------------------------------
WARM_ADDS = 20        # churn's first changes all add: then each withdrawn instance lived ~2 s
WHY = ("announce_shed_queue_full", "announce_shed_expired", "lease_expired", "announce_accepted",
       "announce_renewed", "announce_received", "adj_down_dead", "adj_down_oneway",
       "dead_interval_raised", "lsa_retransmit", "spa_unavailable", "gateway_errors",
       "announce_shared", "sharer_promoted")


def scale_topology(instances: int, services: int, pods: int) -> Topology:
    """Figure 2's switches with ``pods`` pods and ``instances`` instances over
    ``services`` services (topologies/generate.py's population)."""
    return from_spec(f"fig2:pods={pods},instances={instances},services={services}")


def _copy_if_there(src, dst):
    try:
        shutil.copy2(src, dst)
    except FileNotFoundError:
        pass


def sg_counters(net, topo) -> dict:
    """Each SG's counters that say how the announcements fared (and adjacencies)."""
    out = {}
    for s in topo.switches():
        if topo.kind(s) != "sg":
            continue
        try:
            with net.admin(s) as c:
                cnt = dict(c.state(counters_only=True).counters)
        except Exception as exc:               # an agent that does not answer: say so
            out[s] = {"error": str(exc)[:80]}
            continue
        out[s] = {k: v for k, v in cnt.items()
                  if k in WHY or k.startswith("announce_refused")}
    return out


def pct(xs: list[float], q: float):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 1) if xs else None


def many_instances(instances: int, services: int, churn_per_s: float, churn_s: float,
                   pods: int = 64, lease_s: float = 30.0, bmv2_build: str = "default",
                   bring_up_s: float = 300.0, hello_ms: int | None = None) -> dict:
    topo = scale_topology(instances, services, pods)
    caller = "p1"
    src = topo.instances(caller)[0]
    stable = [topo.instances(p)[0] for p in ("p2", "p4")]
    out: dict = {"instances": instances, "services": services, "pods": pods, "lease_s": lease_s}
    with tempfile.TemporaryDirectory(prefix="dmsc-load-scale-") as d:
        log = Path(d) / "fib.log"
        prev = os.environ.get(fiblog.ENV)
        os.environ[fiblog.ENV] = str(log)           # the writers' FIB log (agents inherit it)
        # a long lease at scale: each SG holds ~500 prefixes (16 pods), each renewal
        # an SPA call; at 30 s, ~40 renewals a second per SG (docs/decisions.md)
        net = DmscNet(topo, Path(d) / "net", lease_s=lease_s, bmv2_build=bmv2_build,
                      hello_ms=hello_ms)
        out["hello_ms"] = net.hello_ms
        t0 = time.monotonic()
        try:
            try:
                net.start()
                net.start_control(mode="distributed")
                net.wait_announced(timeout=bring_up_s, poll=1.0)   # 64 status files a read
                with FibReader.for_net(net) as reader:
                    wait_converged(reader, expected_fibs(net.topo),
                                   timeout=max(30.0, bring_up_s - (time.monotonic() - t0)))
            except Exception:
                # the SGs' counters and the logs, read before the network stops
                out["why"] = sg_counters(net, topo)
                keep = Path(tempfile.mkdtemp(prefix="dmsc-load-scale-failed-"))
                for sub in ("agents", "pods", "spa"):
                    if (net.run_dir / sub).is_dir():      # pods rewrite theirs meanwhile
                        shutil.copytree(net.run_dir / sub, keep / sub, dirs_exist_ok=True,
                                        ignore=shutil.ignore_patterns("*.tmp"),
                                        copy_function=_copy_if_there)
                print(f"{instances} instances on {pods} pods did not converge in "
                      f"{bring_up_s:g} s; the SGs' counters: {json.dumps(out['why'])}; "
                      f"logs kept in {keep}", flush=True)
                raise
            out["cold_start_s"] = round(time.monotonic() - t0, 1)
            with FibReader.for_net(net) as r:
                out["fib_entries"] = {s: len(r.read(s)) for s in topo.switches()}
            out["lsa_fragments"] = {}
            for s in topo.switches():
                with net.admin(s) as c:
                    st = c.state()
                out["lsa_fragments"][s] = len(st.lsdb)
            with net.spa() as spa:
                cnt = dict(spa.show().counters)
            verdicts = sum(v for k, v in cnt.items()
                           if not k.startswith(("revalidate_", "bad_request")))
            out["spa_verdicts"] = verdicts
            out["spa_verdicts_per_s"] = round(verdicts / out["cold_start_s"], 1)
            rss = [proc_usage(pid) for kind, _n, pid in processes(net)
                   if kind in ("agent", "agent host")]
            out["agent_rss_mb"] = round(sum(u[1] for u in rss if u) / 2**20, 1)
            out["why"] = sg_counters(net, topo)
            print(f"{instances} instances over {services} services on {pods} pods (hellos "
                  f"{net.hello_ms} ms, leases {lease_s:g} s, BMv2 {bmv2_build}): cold start "
                  f"{out['cold_start_s']} s to every FIB complete; SPA verdicts {verdicts} "
                  f"({out['spa_verdicts_per_s']}/s over the cold start); FIB entries "
                  f"{out['fib_entries']}; LSDB fragments {out['lsa_fragments']}; agents "
                  f"{out['agent_rss_mb']} MB; SGs' counters {json.dumps(out['why'])}",
                  flush=True)

            # churn: instances of /churn on pod3, added and withdrawn, while pod1 calls
            # two stable instances
            n_changes = int(churn_per_s * churn_s)
            net.authorize("/churn", ["p3"], max_depth=2)          # /churn/<i>: two components
            loads = [start_load(net, 50, churn_s + 2, 1.0, dst, pod=caller, src=src)
                     for dst in stable]
            time.sleep(1.0)
            extra, withdrawn, added_at = [], [], {}
            t_churn = time.monotonic()
            log_start = len(fiblog.read(log))
            for i in range(n_changes):
                due = t_churn + i / churn_per_s
                time.sleep(max(0.0, due - time.monotonic()))
                live = [x for x in extra if x not in withdrawn]
                if i < WARM_ADDS or i % 2 == 0 or not live:
                    name = f"/churn/{i}"
                    extra.append(name)
                    added_at[name] = time.monotonic()
                else:
                    withdrawn.append(live[0])
                net.update_pod_control("p3", extra=extra, withdrawn=withdrawn)
            t_end = time.monotonic()
            sums = [json.loads(p.communicate(timeout=churn_s + 60)[0].decode()
                               .strip().splitlines()[-1]) for p in loads]
            time.sleep(3.0)                         # the last announcements reach the FIBs
            lines = fiblog.read(log)[log_start:]
            writes = [x for x in lines if t_churn <= x["t"] <= t_end]
            first: dict = {}
            for x in lines:
                for key in x["prefixes"]:
                    first.setdefault((key, x["switch"]), x["t"])
            to_fib = []
            for name, t in added_at.items():
                key = names.format_key(*names.prefix_key(name))
                ts = [first.get((key, s)) for s in topo.switches()]
                if all(v is not None and v >= t for v in ts):
                    to_fib.append((max(ts) - t) * 1000)
            out.update(churn_per_s=churn_per_s, churn_s=churn_s, churn_changes=n_changes,
                       churn_added=len(added_at),
                       churn_calls=sum(x["scheduled"] for x in sums),
                       churn_lost=sum(x["scheduled"] - x["ok"] for x in sums),
                       churn_errors=[x["errors"] for x in sums],
                       fib_writes_per_s=round(len(writes) / (t_end - t_churn), 1),
                       announce_in_fib=len(to_fib),
                       announce_p50_ms=pct(to_fib, 0.5), announce_p99_ms=pct(to_fib, 0.99))
            out["why_after_churn"] = sg_counters(net, topo)
            # the stable instances' routes should not move while /churn does: every
            # FIB write during the churn that touched one of them, by switch
            stable_keys = {names.format_key(*names.prefix_key(n)): n for n in stable}
            touched: dict = {}
            for x in writes:
                for key in x["prefixes"]:
                    if key in stable_keys:
                        touched.setdefault(x["switch"], []).append(
                            (round(x["t"] - t_churn, 2), stable_keys[key]))
            out["stable_fib_writes"] = touched
            print(f"SGs' counters after the churn {json.dumps(out['why_after_churn'])}; FIB "
                  f"writes touching the stable instances during it: {touched or 'none'}",
                  flush=True)
            if len(to_fib) < len(added_at):           # say why, not only "None"
                st = net.announcements("p3")
                out["churn_not_in_fib"] = {n: st.get(n, {}).get("state", "no status")
                                           for n in list(added_at)[:10]}
                print(f"{len(added_at) - len(to_fib)} of {len(added_at)} added instances "
                      f"were not seen in every FIB; p3's states of the first: "
                      f"{out['churn_not_in_fib']}", flush=True)
            print(f"churn: {n_changes} changes at {churn_per_s:g}/s on p3 "
                  f"({len(added_at)} instances added, {n_changes - len(added_at)} withdrawn); "
                  f"calls to stable instances {stable}: {out['churn_lost']} of "
                  f"{out['churn_calls']} lost {out['churn_errors']}; FIB writes "
                  f"{out['fib_writes_per_s']}/s (all switches); an added instance in every FIB "
                  f"after p50 {out['announce_p50_ms']} ms, p99 {out['announce_p99_ms']} ms "
                  f"({len(to_fib)} of {len(added_at)} seen in every FIB)", flush=True)
        finally:
            net.stop()
            if prev is None:
                os.environ.pop(fiblog.ENV, None)
            else:
                os.environ[fiblog.ENV] = prev
    return out


def plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2), sharey=True,
                             squeeze=False)
    for ax, r in zip(axes[0], results):
        pts = r["steps"]
        x = [s["offered"] for s in pts]
        for c, (key, label) in enumerate((("p50_ms", "p50"), ("p99_ms", "p99"),
                                           ("p999_ms", "p99.9"))):
            ax.plot(x, [s[key] for s in pts], marker="o", color=f"C{c}", label=label)
            if r["half"]:                     # the step at half the knee, run after it
                ax.plot([r["half"]["offered"]], [r["half"][key]], marker="x", ls="",
                        color=f"C{c}", markersize=9)
        if r["knee"]:
            ax.axvline(r["knee"]["offered"], color="grey", ls="--",
                       label=f"knee {r['knee']['offered']:g}/s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (calls/s, open loop)")
        ax.set_title(f"Figure 2, pod1 -> /B/4, {r['mode']} (x: half the knee, again)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0][0].set_ylabel("latency from intended send (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="distributed,central")
    ap.add_argument("--rates", default="50,100,200,400,600,800,1000,1200,1600,2000,2400,3200",
                    help="offered rates, calls/s, rising; the sweep stops at the knee")
    ap.add_argument("--step-s", type=float, default=8.0)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--plot", default="load.png")
    ap.add_argument("--json", help="write every step's summary here")
    ap.add_argument("--instances", type=int, default=0,
                    help="many instances and their churn (0, the default: skip; e.g. 1000)")
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--pods", type=int, default=64, help="pods for --instances (16 a SG)")
    ap.add_argument("--lease-s", type=float, default=30.0, help="the SGs' lease for --instances")
    ap.add_argument("--bmv2", default="default", choices=("default", "perf"),
                    help="BMv2 build for --instances (perf: /usr/local/bmv2-perf)")
    ap.add_argument("--hello-ms", type=int, default=200,
                    help="the agents' hello interval for --instances (dead interval: 3 "
                         "hellos; 0: the default for the switches, 80 ms on Figure 2). 64 "
                         "pods share the two cores with the switches: at 80 ms, stalls of "
                         "a few hundred ms dropped adjacencies and rerouted stable "
                         "instances (smoke.yaml's reason for 200 ms too)")
    ap.add_argument("--churn-per-s", type=float, default=20.0)
    ap.add_argument("--churn-s", type=float, default=60.0)
    ap.add_argument("--skip-knee", action="store_true", help="only the many instances")
    a = ap.parse_args(argv)
    mon = fidelity.benchmark_monitor()   # the verdict on its last line
    if os.geteuid() != 0:
        print("load benchmark: needs root", file=sys.stderr)
        return 2
    # SIGTERM (a `timeout` around the run) unwinds like Ctrl-C, so each network's
    # `finally: net.stop()` removes its hosts, switches and interfaces
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    rates = [float(x) for x in a.rates.split(",")]
    results = [] if a.skip_knee else [sweep(m, rates, a.step_s, a.timeout)
                                      for m in a.modes.split(",")]
    scale = None
    if a.instances:
        try:
            scale = many_instances(a.instances, a.services, a.churn_per_s, a.churn_s,
                                   pods=a.pods, lease_s=a.lease_s, bmv2_build=a.bmv2,
                                   hello_ms=a.hello_ms or None)
        except Exception as exc:             # the knee's figures still print
            print(f"many instances: failed: {type(exc).__name__}: {exc}", flush=True)
    if results:
        plot(results, Path(a.plot))
        print(f"plot: {a.plot}")
    if a.json:
        for r in results:
            for s in r["steps"] + ([r["half"]] if r["half"] else []):
                s.pop("histogram", None)
        Path(a.json).write_text(json.dumps({"knee": results, "scale": scale}, indent=1))
    keys = []
    for r in results:
        pre = "" if r["mode"] == "distributed" else f"{r['mode']}_"
        knee = r["knee"]["offered"] if r["knee"] else None
        if knee is None:
            print(f"{r['mode']}: no knee up to {rates[-1]:g}/s")
        keys += [f"{pre}knee_rps={knee if knee is None else f'{knee:g}'}",
                 f"{pre}p99_ms_half_knee={r['half']['p99_ms'] if r['half'] else None}",
                 f"{pre}base_p99_ms={r['steps'][0]['p99_ms']}"]
    if scale is not None:
        keys += [f"{k}={scale[k]}" for k in ("instances", "cold_start_s", "spa_verdicts_per_s",
                                              "agent_rss_mb", "churn_per_s", "churn_lost",
                                              "fib_writes_per_s", "announce_p99_ms")
                 if scale.get(k) is not None]
    print(" ".join(keys) + " " + mon.kv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
