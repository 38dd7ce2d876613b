"""Run an experiment: bring the network up, play the steps, record, tear down.

One run = one topology, one mode, one repetition, on a fresh network:

1. ``DMSC_FIBLOG`` names the run's FIB log (controller/switch/fiblog.py), so
   every agent, or the central controller, appends each FIB write to it;
2. the network comes up (``bring_up``: SPA, agents or the central controller,
   the SCSC when the SGs probe, announcing pods) until every FIB equals SPF
   over the topology; in the mesh mode (docs/mesh.md) the IPv4 fabric, the
   mesh control plane, every pod's app and sidecar, until every sidecar holds
   every endpoint; that instant is t = 0 of the run;
3. the steps run at their times: a ``traffic`` step starts a bounded load
   in the pod's namespace (``traffic.loadgen --records``: the open loop by
   default, calls on a schedule whatever the answers do; every scheduled call
   with its intended and actual send time, latency from the intended time,
   responder and status; in the mesh mode the same schedule and records over
   HTTP through the pod's sidecar), every other step is an action of
   dmsc.actions; each is an event with its result;
4. meanwhile a sampler reads, every ``record.sample``, each switch's punt
   counter over P4Runtime (control frames to the CPU) and each process's CPU
   time and resident memory from /proc, and the fidelity monitors
   (dmsc/fidelity.py): the host's CPU, each port's frames lost before the P4
   program, the pods' answers past their service time (and the load
   generator's lateness in every call's record); in the mesh mode the switches'
   counters are not read (the IPv4 program has neither the punt nor the
   port_in counter), so neither control frames nor frames lost before P4 are
   recorded there, and there are no agents' ticks;
5. after ``duration`` (and the loads' end), everything is stopped, and the
   raw files are written with times relative to t = 0.

Files of a run (docs/experiments.md describes each field): ``calls.jsonl``,
``fib.jsonl``, ``control.csv``, ``resources.csv``, ``events.jsonl``,
``host.csv``, ``ports.csv``, ``pods.csv``, ``run.json`` (cold start, t0,
topology, mode, errors, the fidelity verdict), and the network's logs under
``net/``.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from controller.switch import fiblog
from controller.switch import p4names as N
from controller.switch.p4rt import SwitchError
from dmsc.stats import kernel_counters, StatsError, switch_ports
from dmsc import actions, fidelity
from dmsc.converge import bring_up, connect_reader
from dmsc.experiment.spec import TRAFFIC, Experiment, Step
from topologies.emu.child_processes import REPO_ROOT, cpu_seconds, die_with_parent, py_env, rss_bytes
from traffic import loadgen
from traffic.wire import defs, names

TICKS_EVERY_S = 2.0          # the agents' tick lateness is read this often at most


class RunError(RuntimeError):
    """A run that could not start (the network did not come up, ...)."""


# -- /proc ------------------------------------------------------------------------------------
def proc_usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds used, resident bytes) of a process, None if it is gone."""
    try:
        return cpu_seconds(pid), rss_bytes(pid)
    except (OSError, IndexError, ValueError):
        return None


def processes(net) -> list[tuple[str, str, int]]:
    """(kind, name, pid) of every process the network runs now."""
    out = []
    for app in list(net.apps):
        if app.proc is not None and app.proc.poll() is None:
            out.append((app.kind, app.name, app.proc.pid))
    for s in net.topo.switches():
        b = net.switch(s).bmv2
        if b.proc is not None and b.proc.poll() is None:
            out.append(("bmv2", s, b.proc.pid))
    mesh = getattr(net, "mesh", None)
    if mesh is not None:          # each sidecar's HAProxy (a child of the sidecar's agent)
        for pod, sc in list(mesh.sidecars.items()):
            pid = sc.haproxy_pid() if sc.alive() else None
            if pid:
                out.append(("haproxy", pod, pid))
    return out


def kernel_rx(intfs) -> int:
    """Frames the kernel received on these interfaces (a switch's ports, in the
    root namespace): beside the P4 program's port_in counter, the difference is
    what was lost before the program (interface and BMv2 capture drops)."""
    n = 0
    for i in intfs:
        try:
            with open(f"/sys/class/net/{i}/statistics/rx_packets") as f:
                n += int(f.read())
        except (OSError, ValueError):
            pass
    return n


class Sampler(threading.Thread):
    """Every ``every`` seconds: each switch's punt counter (control frames
    sent to the CPU port: hellos, LSAs, announcements, discovery, probe
    replies to the SG), and each process's CPU and memory."""

    def __init__(self, net, t0: float, every: float, control_csv, resources_csv, *,
                 control: bool = True, resources: bool = True, fidelity_dir: Path | None = None):
        super().__init__(name="sampler", daemon=True)
        self.net, self.t0, self.every = net, t0, every
        self.control, self.resources = control, resources
        self.stop_event = threading.Event()
        self.conns: dict = {}
        self.last_cpu: dict[int, tuple[float, float]] = {}
        self.cf = open(control_csv, "w", newline="")
        self.rf = open(resources_csv, "w", newline="")
        self.cw, self.rw = csv.writer(self.cf), csv.writer(self.rf)
        self.cw.writerow(["t", "switch", "punted", "port_in", "kernel_rx"])
        t = net.topo
        self.intfs = {s: [t.intf_name(s, t.port(s, nb)) for nb in t.graph.neighbors(s)]
                      for s in t.switches()}
        self.rw.writerow(["t", "kind", "name", "pid", "cpu_pct", "rss_mb"])
        self.errors = 0
        # the fidelity monitors: host.csv (its own thread, so a slow switch
        # read never hides a saturated host), ports.csv, pods.csv
        self.host = None
        self.pf = self.podf = None
        if fidelity_dir is not None:
            self.host = fidelity.HostMonitor(every, csv_path=fidelity_dir / "host.csv", t0=t0)
            self.pf = open(fidelity_dir / "ports.csv", "w", newline="")
            self.pw = csv.writer(self.pf)
            self.pw.writerow(["t", "switch", "port", "kernel_rx", "p4_in"])
            self.ports = {s: switch_ports(t, s) for s in t.switches()}
            self.podf = open(fidelity_dir / "pods.csv", "w", newline="")
            self.podw = csv.writer(self.podf)
            self.podw.writerow(["t", "name", *fidelity.Histogram().to_dict(), "max_ms"])
            self.pod_dir = Path(net.run_dir) / "pods"
            self.tickf = open(fidelity_dir / "ticks.csv", "w", newline="")
            self.tickw = csv.writer(self.tickf)
            self.tickw.writerow(["t", "name", *fidelity.Histogram().to_dict()])
            self.admins: dict = {}
            self.next_ticks = 0.0

    def _conn(self, s: str):
        c = self.conns.get(s)
        if c is None:
            sw = self.net.switch(s)
            if not sw.alive():
                return None
            try:
                c = self.conns[s] = connect_reader(s, sw.grpc_addr, sw.device_id)
            except SwitchError:
                return None
        return c

    def sample_control(self, now: float) -> None:
        for s in self.net.topo.switches():
            c = self._conn(s)
            if c is None:
                continue
            try:
                punted = sum(p for p, _b in c.read_counter(N.COUNTER_PUNT_REASONS).values())
                cells = c.read_counter(N.COUNTER_PORT_IN)
                port_in = sum(p for i, (p, _b) in cells.items()
                              if i != defs.CPU_PORT)           # packet-outs are not received
            except (SwitchError, Exception):       # a killed switch: reconnect next time
                self.errors += 1
                c.close()
                self.conns.pop(s, None)
                continue
            t = f"{now - self.t0:.3f}"
            self.cw.writerow([t, s, punted, port_in, kernel_rx(self.intfs[s])])
            if self.pf is not None:     # per port, P4 first (a frame in flight: lost a moment)
                for port, intf, _nb in self.ports[s]:
                    try:
                        rx = kernel_counters(intf)["rx_packets"]
                    except StatsError:
                        continue
                    self.pw.writerow([t, s, port, rx, cells.get(port, (0, 0))[0]])

    def sample_ticks(self, now: float) -> None:
        """Each agent's tick-lateness buckets from its state counters
        (controller/agent/tick_lateness.py), every TICKS_EVERY_S at most, and
        0.1 s per agent (64 agents: every 6.4 s): GetState carries the whole
        LSDB and RIB, and reading it costs the agents CPU too."""
        from controller.agent.admin_client import AdminClient
        from controller.agent.tick_lateness import PREFIX
        if now < self.next_ticks:
            return
        self.next_ticks = now + max(self.every, TICKS_EVERY_S, 0.1 * len(self.net.agents))
        for name, app in list(self.net.agents.items()):
            addr = getattr(app, "admin_addr", None)
            if addr is None or not app.alive():
                continue
            try:
                c = self.admins.get(name)
                if c is None or c.addr != addr:
                    c = self.admins[name] = AdminClient(addr, timeout=1.0)
                counters = dict(c.state(counters_only=True).counters)
            except Exception:                   # a stopped agent: next time
                old = self.admins.pop(name, None)
                if old is not None:
                    old.close()
                continue
            if any(k.startswith(PREFIX) for k in counters):
                h = fidelity.Histogram.from_dict(counters, PREFIX)
                self.tickw.writerow([f"{now - self.t0:.3f}", name, *h.counts])

    def sample_pods(self, now: float) -> None:
        for path in sorted(self.pod_dir.glob("*.timing.json")):
            d = fidelity.read_timing(path)
            if d is None:
                continue
            h = fidelity.Histogram.from_dict(d.get("overrun", {}))
            self.podw.writerow([f"{now - self.t0:.3f}", path.name.split(".")[0], *h.counts,
                                d.get("max_ms", "")])

    def sample_resources(self, now: float) -> None:
        for kind, name, pid in processes(self.net):
            u = proc_usage(pid)
            if u is None:
                continue
            cpu_s, rss = u
            prev = self.last_cpu.get(pid)
            self.last_cpu[pid] = (now, cpu_s)
            pct = "" if prev is None else f"{100 * (cpu_s - prev[1]) / max(now - prev[0], 1e-6):.1f}"
            self.rw.writerow([f"{now - self.t0:.3f}", kind, name, pid, pct,
                              f"{rss / 2**20:.1f}"])

    def sample(self) -> None:
        now = time.monotonic()
        if self.control:
            self.sample_control(now)
        if self.resources:
            self.sample_resources(now)
        if self.podf is not None:
            self.sample_pods(now)
            self.sample_ticks(now)
            self.tickf.flush()
            self.podf.flush()
            self.pf.flush()
        self.cf.flush()
        self.rf.flush()

    def run(self) -> None:
        if self.host is not None:
            self.host.start()
        nxt = time.monotonic()
        while not self.stop_event.is_set():
            self.sample()
            nxt += self.every
            self.stop_event.wait(max(0.0, nxt - time.monotonic()))

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=30)
        for c in self.conns.values():
            c.close()
        self.conns = {}
        if self.host is not None:
            self.host.stop()
        if self.podf is not None:
            self.sample_pods(time.monotonic())     # the pods' and agents' last counts
            self.next_ticks = 0.0
            self.sample_ticks(time.monotonic())
            for c in self.admins.values():
                c.close()
            self.tickf.close()
            self.podf.close()
            self.pf.close()
        self.cf.close()
        self.rf.close()


# -- traffic -----------------------------------------------------------------------------------
class Flow:
    """One traffic step: a bounded load in a pod's namespace (traffic.loadgen:
    the open loop unless the step says ``loop: closed``; in the mesh mode over
    HTTP through the pod's sidecar, the same schedule and records)."""

    def __init__(self, net, step: Step, index: int, out_dir: Path):
        p = step.params
        self.name = f"flow{index}"
        self.step = step
        self.records = out_dir / f"{self.name}.calls.jsonl"
        loop, arrivals = p.get("loop", "open"), p.get("arrivals", "constant")
        self.count = len(loadgen.schedule(p["rate"], p["duration"], arrivals=arrivals,
                                          seed=p.get("seed"))) if loop == "open" \
            else max(1, int(round(p["rate"] * p["duration"])))
        t = net.topo
        src = p["src"] or t.instances(p["pod"])[0]
        if getattr(net, "mesh", None) is not None:
            from controller.mesh.haproxy import OUTBOUND_PORT
            via = ["--http", f"127.0.0.1:{OUTBOUND_PORT}"]
        else:
            via = ["--iface", t.intf_name(p["pod"], 0), "--mac", t.mac(p["pod"], 0)]
        self.cmd = [sys.executable, "-m", "traffic.loadgen", *via, "--src", src,
                    "--loop", loop, "--rate", str(p["rate"]), "--duration", str(p["duration"]),
                    "--arrivals", arrivals, "--seed", str(p.get("seed", 1)),
                    "--timeout", str(p["timeout"]),
                    "--deadline", str(p["duration"] + p["timeout"] + 2),
                    "--trace-prefix", f"{self.name}-",
                    "--records", str(self.records), p["dst"], p["method"]]
        self.proc = net.host(p["pod"]).popen(die_with_parent(self.cmd), stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, cwd=str(REPO_ROOT),
                                             env=py_env())
        self.summary: dict | None = None

    def finish(self, timeout: float) -> dict:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()                  # SIGTERM: it still prints its summary
            try:
                out, err = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
        try:
            self.summary = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.summary = {"error": err.decode()[-400:]}
        return self.summary


# -- one run -----------------------------------------------------------------------------------
def run_once(exp: Experiment, topo_spec: str, mode: str, run_dir: Path, *,
             on_progress=None, bring_up_timeout: float | None = None) -> dict:
    """One run on a fresh network; its raw files in ``run_dir``; returns run.json's content.
    ``on_progress(t, total, label)`` is called as the run advances."""
    from topologies.emu.net import DmscNet
    run_dir.mkdir(parents=True, exist_ok=True)
    topo = exp.topos[topo_spec]
    nsw = len(topo.switches())
    raw_fib = run_dir / "fib.raw.jsonl"
    raw_fib.unlink(missing_ok=True)
    prev_env = os.environ.get(fiblog.ENV)
    if exp.record["fib"]:
        os.environ[fiblog.ENV] = str(raw_fib)       # inherited by every process started now
    info = {"experiment": exp.name, "topology": topo_spec, "mode": mode,
            "switches": nsw, "pods": len(topo.pods()), "errors": [],
            "instances": {p: list(topo.instances(p)) for p in topo.pods()}}
    progress = on_progress or (lambda *a: None)
    network = exp.network_for(mode)
    info["network"] = network
    net = DmscNet(topo, run_dir / "net", probe_ms=network["probe_ms"],
                  hello_ms=network["hello_ms"], lease_s=network["lease_s"],
                  app_file=exp.app_path, bmv2_build=network.get("bmv2", "default"))
    mesh_kw = {}
    if mode == "mesh":
        mesh_kw = {"server_timeout_ms": network["mesh_timeout_ms"],
                   "extra_names": [s.params["prefix"] for s in exp.steps_for(mode)
                                   if s.do == "announce"]}
    progress(0.0, exp.duration, f"bringing up {topo_spec} ({mode})")
    t_start = time.monotonic()
    try:
        try:
            bring_up(net, timeout=bring_up_timeout or (60.0 + 3.0 * nsw), mode=mode, **mesh_kw)
        except Exception as exc:
            info["errors"].append(f"bring-up: {exc}")
            info["cold_start_s"] = None
            _write_json(run_dir / "run.json", info)
            raise RunError(f"{topo_spec} ({mode}) did not come up: {exc}") from exc
        t0 = time.monotonic()
        info.update(t0_monotonic=t0, cold_start_s=round(t0 - t_start, 3),
                    hello_ms=net.hello_ms, dead_ms=net.dead_ms)
        sampler = Sampler(net, t0, exp.record["sample"], run_dir / "control.csv",
                          run_dir / "resources.csv",
                          control=exp.record["control"] and mode != "mesh",
                          resources=exp.record["resources"], fidelity_dir=run_dir)
        sampler.start()
        flows: list[Flow] = []
        try:
            with open(run_dir / "events.jsonl", "w") as ev:
                for step in exp.steps_for(mode):
                    _wait_until(t0 + step.at, t0, exp.duration, progress, step.label())
                    ev.write(json.dumps(_play(net, step, flows, run_dir, t0)) + "\n")
                    ev.flush()
                _wait_until(t0 + exp.duration, t0, exp.duration, progress, "recording")
            for f in flows:
                left = t0 + f.step.at + f.step.params["duration"] + 10 - time.monotonic()
                f.finish(timeout=max(5.0, left))
        finally:
            for f in flows:
                if f.proc.poll() is None:
                    f.finish(timeout=5)
            sampler.stop()
        info["sampler_errors"] = sampler.errors
        info["flows"] = [{"name": f.name, "step_line": f.step.line, **f.step.params,
                          "summary": f.summary} for f in flows]
        info["t_end"] = round(time.monotonic() - t0, 3)
    finally:
        net.stop()
        if exp.app_path is not None:
            info["span_files"] = [str(net.span_file(p)) for p in topo.pods()]
        if prev_env is None:
            os.environ.pop(fiblog.ENV, None)
        else:
            os.environ[fiblog.ENV] = prev_env
    _finish_files(run_dir, info, topo, exp)
    if info.get("t0_monotonic") is not None:
        info["fidelity"] = fidelity.run_verdict(run_dir).to_dict()
    _write_json(run_dir / "run.json", info)
    progress(exp.duration, exp.duration, "done")
    return info


def _wait_until(t: float, t0: float, total: float, progress, label: str) -> None:
    """The experiment's clock: sleep until the step's time (it is the
    schedule, not a guess at when something is ready), reporting progress."""
    while True:
        now = time.monotonic()
        progress(min(now - t0, total), total, label)
        if now >= t:
            return
        time.sleep(min(0.2, t - now))


def _play(net, step: Step, flows: list, run_dir: Path, t0: float) -> dict:
    t = time.monotonic()
    ev = {"t": round(t - t0, 4), "at": step.at, "do": step.do, "params": step.params,
          "label": step.label(), "line": step.line}
    try:
        if step.do == TRAFFIC:
            f = Flow(net, step, len(flows) + 1, run_dir)
            flows.append(f)
            ev["result"] = {"flow": f.name, "calls": f.count}
        else:
            ev["result"] = actions.run(net, step.do, **step.params)
    except actions.ActionError as exc:
        ev["error"] = str(exc)
    except Exception as exc:          # recorded, and the run goes on: one failed step is data
        ev["error"] = f"{type(exc).__name__}: {exc}"
    ev["took_s"] = round(time.monotonic() - t, 4)
    return ev


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))


def name_index(topo, exp: Experiment) -> dict[str, str]:
    """{format_key: name} for every prefix the run may have written."""
    from topologies.expected import served_prefixes
    known = set(served_prefixes(topo))
    for s in exp.steps:
        for k in ("prefix",):
            if k in s.params:
                p = s.params[k]
                parts = names.components(p)
                known.update("/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1))
    out = {}
    for p in known:
        out[names.format_key(*names.prefix_key(p))] = p
    for s in topo.switches():                     # the switches' own names (punt entries)
        try:
            sn = names.switch_name(s)
            out[names.format_key(*names.prefix_key(sn))] = sn
        except (names.InvalidName, AttributeError):
            pass
    return out


def _finish_files(run_dir: Path, info: dict, topo, exp: Experiment) -> None:
    """Raw logs -> the run's data files, times relative to t = 0."""
    t0 = info.get("t0_monotonic")
    if t0 is None:
        return
    idx = name_index(topo, exp)
    raw = run_dir / "fib.raw.jsonl"
    with open(run_dir / "fib.jsonl", "w") as out:
        for line in sorted(fiblog.read(raw), key=lambda x: x["t"]):
            line["t"] = round(line["t"] - t0, 4)
            line["names"] = [idx.get(k, k) for k in line["prefixes"]]
            out.write(json.dumps(line) + "\n")
    raw.unlink(missing_ok=True)
    with open(run_dir / "calls.jsonl", "w") as out:
        for f in info.get("flows", []):
            path = run_dir / f"{f['name']}.calls.jsonl"
            try:
                lines = path.read_text().splitlines()
            except OSError:
                continue
            calls = []
            for raw_line in lines:
                try:
                    c = json.loads(raw_line)
                except ValueError:
                    continue
                c["t"] = round(c["t"] - t0, 4)
                if c.get("t_sent") is not None:
                    c["t_sent"] = round(c["t_sent"] - t0, 4)
                c["flow"] = f["name"]
                calls.append(c)
            calls.sort(key=lambda c: c["t"])     # the open loop writes them as they end
            for c in calls:
                out.write(json.dumps(c) + "\n")
            path.unlink()
    spans = info.pop("span_files", None)
    if spans:
        from traffic.callgraph import read_spans
        with open(run_dir / "spans.jsonl", "w") as out:
            for sp in sorted(read_spans(spans), key=lambda x: x["t_in"]):
                sp["t_in"] = round(sp["t_in"] - t0, 6)
                sp["t_out"] = round(sp["t_out"] - t0, 6)
                for c in sp.get("calls", []):
                    for k in ("sent", "answered"):
                        if c.get(k) is not None:
                            c[k] = round(c[k] - t0, 6)
                out.write(json.dumps(sp, separators=(",", ":")) + "\n")


def versions() -> dict:
    """What produced the data: the commit, BMv2, Python and its packages, the machine."""
    import platform
    from importlib import metadata
    out = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
           "python": platform.python_version(), "kernel": platform.release(),
           "cpus": os.cpu_count(), "packages": {}}
    try:
        out["git_commit"] = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                                           capture_output=True, text=True,
                                           timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        out["git_dirty"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    try:
        r = subprocess.run(["simple_switch_grpc", "--version"], capture_output=True, text=True,
                           timeout=10)
        out["bmv2"] = (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        out["bmv2"] = None
    for pkg in ("grpcio", "protobuf", "scapy", "networkx", "PyYAML", "matplotlib", "rich",
                "p4runtime", "p4runtime-shell", "cryptography", "mininet"):
        try:
            out["packages"][pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        with open("/proc/meminfo") as f:
            out["mem_total_kb"] = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return out


def run_experiment(exp: Experiment, results: Path, *, on_progress=None,
                   on_run=None, stamp: str | None = None) -> Path:
    """Every run of an experiment (each topology x mode x repetition) and its
    report; the results folder ``results/<name>-<time>/``."""
    from dmsc.experiment import report
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = Path(results) / f"{exp.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=False)
    import yaml
    (out / "experiment.yaml").write_text(
        "# the experiment as it ran: every default filled in, times in seconds\n"
        + yaml.safe_dump(exp.resolved(), sort_keys=False))
    _write_json(out / "versions.json", versions())
    if exp.app_path is not None:             # the report checks the trees against it
        (out / "application.yaml").write_text(exp.app_path.read_text())
    runs = []
    try:
        for topo_spec in exp.topologies:
            for mode in exp.modes:
                for i in range(1, exp.repeat + 1):
                    rd = out / "runs" / report._slug(topo_spec) / mode / f"run-{i}"
                    if on_run:
                        on_run(topo_spec, mode, i)
                    try:
                        info = run_once(exp, topo_spec, mode, rd, on_progress=on_progress)
                    except RunError as exc:
                        info = json.loads((rd / "run.json").read_text()) \
                            if (rd / "run.json").exists() else \
                            {"topology": topo_spec, "mode": mode, "errors": [str(exc)]}
                    info["dir"] = str(rd.relative_to(out))
                    runs.append(info)
    finally:       # interrupted (Ctrl-C, SIGTERM): the report of the runs that finished
        _write_json(out / "runs.json", runs)
        if runs:
            report.write(out)
    return out


