"""Did the emulation keep up? Fidelity monitors and the verdict of a run.

An emulated network on one machine is only as true as the machine's spare
capacity (Mininet-HiFi, Handigol et al., CoNEXT 2012: monitors that detect
when the emulator itself fell behind). The monitors, each sampled through a
run (docs/experiments.md, "Fidelity", has the thresholds and the measurements
they come from):

* ``host_cpu``: each core's busy share (``/proc/stat``) and the share of time
  some runnable task waited for a CPU (``/proc/pressure/cpu``, PSI "some"),
  with the run queue (``procs_running`` of ``/proc/loadavg``) beside them;
* ``lost_before_p4``: frames a switch's interfaces received that BMv2 never
  handed to the P4 program (per port: kernel ``rx_packets`` - P4 ``port_in``,
  dmsc/stats.py);
* ``loadgen_late``: how late the load generator (traffic.rmi_client) sent a
  call against its schedule, after sleeping for it;
* ``pod_overrun``: how much later than its service time a pod answered;
* ``tick_late``: how late an agent's protocol loop ran a tick against its
  deadline (hellos, dead intervals, retransmissions), a histogram per agent.

:func:`verdict` turns the recorded series into ``ok``, ``degraded`` or
``invalid`` with the reasons (each names its monitor); :class:`HostMonitor`
samples the host in a thread for the benchmarks and the live view. The host is
read by hand from /proc (three small files; psutil has no PSI reader).
"""
from __future__ import annotations

import csv
import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dmsc.run_files import read_csv as _csv, read_jsonl as _jsonl
from traffic.wire.lateness import Histogram

PROC = Path("/proc")
OK, DEGRADED, INVALID, UNKNOWN = "ok", "degraded", "invalid", "unknown"
LEVELS = (OK, DEGRADED, INVALID)

# (degraded at or above, invalid at or above) per monitor: docs/experiments.md, "Fidelity"
SATURATED_BUSY_PCT = 95.0          # a core this busy in a sample counts as saturated
THRESHOLDS = {
    "cpu_pressure_pct": (25.0, 40.0),   # mean % of the run some runnable task waited for a CPU
    "saturated_share": (0.10, 0.50),    # share of samples with every core saturated
    "lost_before_p4_share": (0.001, 0.01),   # of the frames the switches' ports received ...
    "lost_before_p4_min": 10,           # ... and at least this many (a frame in flight is not lost)
    "loadgen_late_p99_ms": (5.0, 50.0),
    "pod_overrun_p99_ms": (5.0, 50.0),
    "tick_late_p99_ms": (20.0, 100.0),
    "foreign_cpu_pct": (10.0, 30.0),    # benchmarks: mean % of the machine used by other work
}
MIN_EVENTS = 20                    # a lateness p99 over fewer events is not judged


# -- the host, from /proc ------------------------------------------------------------------------
@dataclass
class HostSnapshot:
    t: float
    cores: list[tuple[int, int]]        # per core (busy jiffies, all jiffies)
    procs_running: int
    pressure_us: int | None             # PSI cpu "some" total, None without PSI


def read_host(proc: Path = PROC, clock=time.monotonic) -> HostSnapshot:
    cores = []
    with open(proc / "stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *vals = line.split()
            if name == "cpu":
                continue
            v = [int(x) for x in vals[:8]]          # user nice system idle iowait irq softirq steal
            idle = v[3] + v[4]
            cores.append((sum(v) - idle, sum(v)))
    with open(proc / "loadavg") as f:
        running = int(f.read().split()[3].split("/")[0])
    pressure = None
    try:
        with open(proc / "pressure" / "cpu") as f:
            for line in f:
                if line.startswith("some"):
                    pressure = int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return HostSnapshot(clock(), cores, running, pressure)


CLK_TCK = 100            # sysconf(_SC_CLK_TCK) on Linux


def tree_cpu_s(root: int, proc: Path = PROC) -> float:
    """CPU seconds of a process and all its descendants (their children that
    ended included: cutime/cstime), from /proc/*/stat."""
    parent, cpu = {}, {}
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "stat").read_text()
        except OSError:
            continue
        f = raw[raw.rfind(")") + 2:].split()     # after "(comm)": state ppid ...
        pid = int(d.name)
        parent[pid] = int(f[1])
        cpu[pid] = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    kids: dict[int, list[int]] = {}
    for pid, pp in parent.items():
        kids.setdefault(pp, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0)
        todo += kids.get(pid, [])
    return total / CLK_TCK


def host_row(prev: HostSnapshot, cur: HostSnapshot) -> dict:
    """One sample between two snapshots: each core's busy %, the run queue
    (the kernel's count of runnable tasks, the reader included), the % of the
    interval some task waited for a CPU."""
    busy = []
    for (b0, a0), (b1, a1) in zip(prev.cores, cur.cores):
        busy.append(round(100.0 * (b1 - b0) / (a1 - a0), 1) if a1 > a0 else 0.0)
    dt = cur.t - prev.t
    pressure = None
    if cur.pressure_us is not None and prev.pressure_us is not None and dt > 0:
        pressure = round(min(100.0, (cur.pressure_us - prev.pressure_us) / (dt * 1e4)), 1)
    return {"t": cur.t, "busy_pct": busy, "run_queue": cur.procs_running,
            "cpu_pressure_pct": pressure}


HOST_FIELDS = ("t", "run_queue", "cpu_pressure_pct", "busy_min_pct", "busy_max_pct")


def host_csv_row(row: dict, t0: float) -> list:
    b = row["busy_pct"]
    return [f"{row['t'] - t0:.3f}", row["run_queue"],
            "" if row["cpu_pressure_pct"] is None else row["cpu_pressure_pct"],
            min(b) if b else "", max(b) if b else "", *b]


def host_csv_header(ncores: int) -> list:
    return [*HOST_FIELDS, *(f"cpu{i}_pct" for i in range(ncores))]


def read_host_csv(rows: list[dict]) -> list[dict]:
    """host.csv rows back as :func:`host_row` dicts (t relative to t = 0)."""
    out = []
    for r in rows:
        busy = [float(v) for k, v in r.items() if k and k.startswith("cpu") and v not in ("", None)]
        out.append({"t": float(r["t"]), "busy_pct": busy, "run_queue": int(r["run_queue"]),
                    "cpu_pressure_pct": float(r["cpu_pressure_pct"])
                    if r.get("cpu_pressure_pct") not in ("", None) else None})
    return out


class HostMonitor(threading.Thread):
    """Samples the host every ``every`` s in a thread, keeps the rows (and
    writes them to ``csv_path`` if given). As a context manager for a benchmark:
    ``with HostMonitor() as mon: ...`` then ``mon.verdict()``, ``mon.kv()``."""

    def __init__(self, every: float = 0.5, csv_path=None, t0: float | None = None,
                 keep: int | None = None, proc: Path = PROC, own_pid: int | None = None):
        super().__init__(name="fidelity-host", daemon=True)
        self.every, self.proc = every, proc
        self.rows: list[dict] = []
        self.keep = keep
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.t0 = time.monotonic() if t0 is None else t0
        self._f = open(csv_path, "w", newline="") if csv_path else None
        self._w = csv.writer(self._f) if self._f else None
        self.own_pid = own_pid        # with it, each row has foreign_pct: the CPU others used
        self._prev = read_host(proc)
        self._own = tree_cpu_s(own_pid, proc) if own_pid else None
        if self._w:
            self._w.writerow(host_csv_header(len(self._prev.cores)))

    def sample(self) -> dict:
        cur = read_host(self.proc)
        row = host_row(self._prev, cur)
        if self.own_pid:
            own = tree_cpu_s(self.own_pid, self.proc)
            dt, n = cur.t - self._prev.t, max(1, len(row["busy_pct"]))
            used = sum(row["busy_pct"]) / 100 * dt             # core-seconds, everyone
            row["foreign_pct"] = round(max(0.0, 100 * (used - (own - self._own)) / (n * dt)), 1) \
                if dt > 0 else 0.0
            self._own = own
        self._prev = cur
        with self.lock:
            self.rows.append(row)
            if self.keep and len(self.rows) > self.keep:
                del self.rows[:-self.keep]
        if self._w:
            self._w.writerow(host_csv_row(row, self.t0))
            self._f.flush()
        return row

    def run(self) -> None:
        nxt = time.monotonic()
        while True:
            nxt += self.every
            if self.stop_event.wait(max(0.0, nxt - time.monotonic())):
                return
            try:
                self.sample()
            except OSError:
                pass

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=5)
        if self._f:
            self._f.close()
            self._f = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.rows)

    def verdict(self, **other) -> "Verdict":
        return verdict(host=self.snapshot(), **other)

    def kv(self, **other) -> str:
        """``fidelity=LEVEL fidelity_reason=...`` for a benchmark's last line."""
        return self.verdict(**other).kv()


def benchmark_monitor(every: float = 0.5) -> HostMonitor:
    """Started at a benchmark's start. A benchmark loads the machine on
    purpose (BMv2 as fast as it goes, SPF on one core): what makes its figure
    untrue is *other* work, so its verdict judges the CPU the rest of the
    machine used (``host_foreign``: busy time minus this process tree's),
    not saturation. ``mon.kv()`` ends the benchmark's last key=value line."""
    import os
    m = HostMonitor(every, own_pid=os.getpid())
    m.start()
    return m


# -- the verdict -----------------------------------------------------------------------------------
@dataclass
class Finding:
    monitor: str
    level: str
    value: float
    text: str

    def to_dict(self) -> dict:
        return {"monitor": self.monitor, "level": self.level, "value": self.value,
                "text": self.text}


@dataclass
class Verdict:
    level: str
    findings: list[Finding] = field(default_factory=list)   # every monitor over its ok bound
    measured: dict = field(default_factory=dict)             # each monitor's figure

    @property
    def monitors(self) -> list[str]:
        """The monitors that set the level (the worst ones)."""
        return list(dict.fromkeys(f.monitor for f in self.findings if f.level == self.level))

    @property
    def reason(self) -> str:
        if self.level == UNKNOWN:
            return "no monitor was recorded (a run from before the monitors)"
        if not self.findings:
            return "every monitor within its bounds"
        worst = sorted(self.findings, key=lambda f: -LEVELS.index(f.level))
        return "; ".join(f"{f.monitor}: {f.text}" for f in worst)

    def to_dict(self) -> dict:
        return {"level": self.level, "reason": self.reason, "monitors": self.monitors,
                "findings": [f.to_dict() for f in self.findings], "measured": self.measured}

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        return cls(d["level"], [Finding(**f) for f in d.get("findings", [])],
                   d.get("measured", {}))

    def kv(self) -> str:
        """Key=value form: the reason without spaces (``host_cpu``, ``loadgen_late``...)."""
        if self.level in (OK, UNKNOWN):
            return f"fidelity={self.level}"
        return f"fidelity={self.level} fidelity_reason=" + ",".join(
            f"{f.monitor}:{f.value:g}" for f in self.findings if f.level == self.level)


def _level(value: float | None, bounds) -> str:
    if value is None:
        return OK
    lo, hi = bounds
    return INVALID if value >= hi else DEGRADED if value >= lo else OK


def _p99(xs: list[float]) -> float | None:
    if len(xs) < MIN_EVENTS:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))]


def verdict(host: list[dict] | None = None, lost: tuple[int, int] | None = None,
            loadgen_late_ms: list[float] | None = None, pod_overrun: Histogram | None = None,
            tick_late: Histogram | None = None, thresholds: dict | None = None) -> Verdict:
    """The verdict on a run's monitor series: ``host`` (:func:`host_row` dicts),
    ``lost`` ((frames lost before P4, frames the ports received), over the run),
    ``loadgen_late_ms`` (per call), ``pod_overrun`` and ``tick_late``
    (histograms over the run, all pods / all agents). A monitor not given is
    not judged; with none at all the verdict is ``unknown``."""
    th = {**THRESHOLDS, **(thresholds or {})}
    findings: list[Finding] = []
    measured: dict = {}
    judged = False

    def judge(monitor, value, bounds, text):
        if value is None:
            return
        lvl = _level(value, bounds)
        if lvl != OK:
            findings.append(Finding(monitor, lvl, round(value, 3),
                                    f"{text} ({'invalid' if lvl == INVALID else 'degraded'} "
                                    f"at {bounds[1] if lvl == INVALID else bounds[0]:g})"))

    if host and all("foreign_pct" in r for r in host):
        judged = True
        fp = round(statistics.mean(r["foreign_pct"] for r in host), 1)
        measured.update(foreign_cpu_pct=fp, host_samples=len(host))
        judge("host_foreign", fp, th["foreign_cpu_pct"],
              f"other work used {fp:g} % of the machine's CPU")
        host = None                   # the benchmark's own load is not judged
    if host:
        judged = True
        press = [r["cpu_pressure_pct"] for r in host if r.get("cpu_pressure_pct") is not None]
        sat = [all(b >= SATURATED_BUSY_PCT for b in r["busy_pct"]) for r in host if r["busy_pct"]]
        rq = [r["run_queue"] / max(1, len(r["busy_pct"])) for r in host]
        mp = round(statistics.mean(press), 1) if press else None
        share = round(sum(sat) / len(sat), 3) if sat else None
        measured.update(cpu_pressure_pct=mp, saturated_share=share,
                        run_queue_per_core=round(statistics.median(rq), 2) if rq else None,
                        host_samples=len(host))
        if mp is not None:
            judge("host_cpu", mp, th["cpu_pressure_pct"],
                  f"some task waited for a CPU {mp:g} % of the time")
        if share is not None:
            judge("host_cpu", share, th["saturated_share"],
                  f"every core {SATURATED_BUSY_PCT:g} % busy in {100 * share:.0f} % of the samples")
    if lost is not None:
        judged = True
        n, rx = lost
        s = n / rx if rx else 0.0
        measured.update(lost_before_p4=n, port_rx=rx)
        if n >= th["lost_before_p4_min"]:
            judge("lost_before_p4", s, th["lost_before_p4_share"],
                  f"{n} of {rx} frames ({100 * s:.2f} %) lost before the P4 program")
    if loadgen_late_ms is not None:
        judged = True
        p = _p99(loadgen_late_ms)
        p = None if p is None else round(p, 2)
        measured.update(loadgen_late_p99_ms=p, loadgen_calls=len(loadgen_late_ms))
        judge("loadgen_late", p, th["loadgen_late_p99_ms"],
              f"calls sent {p} ms late (p99) against the schedule")
    for name, h, key, what in (("pod_overrun", pod_overrun, "pod_overrun_p99_ms",
                                "answers {p:g} ms past the service time (p99)"),
                               ("tick_late", tick_late, "tick_late_p99_ms",
                                "protocol ticks {p:g} ms late (p99)")):
        if h is None:
            continue
        judged = True
        p = h.quantile_ms(0.99) if h.total >= MIN_EVENTS else None
        measured[f"{name}_p99_ms"] = p
        measured[f"{name}_events"] = h.total
        judge(name, p, th[key], what.format(p=p or 0))
    if not judged:
        return Verdict(UNKNOWN, [], measured)
    level = max((f.level for f in findings), key=LEVELS.index, default=OK)
    return Verdict(level, findings, measured)


# -- a run's files ------------------------------------------------------------------------------------


def lost_per_port(rows: list[dict]) -> dict[tuple[str, int], tuple[int, int]]:
    """{(switch, port): (lost before P4, kernel rx)} over the run from
    ports.csv (after a counter went down, a restarted switch: from then on)."""
    by = {}
    for r in rows:
        by.setdefault((r["switch"], int(r["port"])), []).append(
            (float(r["t"]), int(r["p4_in"]), int(r["kernel_rx"])))
    out = {}
    for key, pts in by.items():
        pts.sort()
        start = 0
        for i in range(1, len(pts)):
            if pts[i][1] < pts[i - 1][1]:
                start = i
        (_t1, p1, k1), (_t2, p2, k2) = pts[start], pts[-1]
        out[key] = (max(0, (k2 - k1) - (p2 - p1)), k2 - k1)
    return out


def hist_rows(rows: list[dict]) -> Histogram | None:
    """A histogram over the run from cumulative per-process snapshots
    (pods.csv, ticks.csv: t, name, the buckets): per process, its last
    snapshot minus its first (from a restart on, if it restarted)."""
    if not rows:
        return None
    by: dict[str, list] = {}
    for r in rows:
        by.setdefault(r["name"], []).append((float(r["t"]), Histogram.from_dict(r)))
    total = Histogram()
    for pts in by.values():
        pts.sort(key=lambda x: x[0])
        start = 0
        for i in range(1, len(pts)):
            if pts[i][1].total < pts[i - 1][1].total:
                start = i
        total = total + (pts[-1][1].since(pts[start][1]) if len(pts) > 1 else pts[-1][1])
    return total


def run_verdict(run_dir: Path) -> Verdict:
    """The verdict of one run from its files (host.csv, ports.csv,
    calls.jsonl's ``late_ms``, pods.csv, ticks.csv): what the report shows."""
    run_dir = Path(run_dir)
    host = read_host_csv(_csv(run_dir / "host.csv")) or None
    ports = _csv(run_dir / "ports.csv")
    lost = None
    if ports:
        per = lost_per_port(ports)
        lost = (sum(v[0] for v in per.values()), sum(v[1] for v in per.values()))
    calls = _jsonl(run_dir / "calls.jsonl")
    late = [c["late_ms"] for c in calls if c.get("late_ms") is not None] \
        if any("late_ms" in c for c in calls) else None
    return verdict(host=host, lost=lost, loadgen_late_ms=late,
                   pod_overrun=hist_rows(_csv(run_dir / "pods.csv")),
                   tick_late=hist_rows(_csv(run_dir / "ticks.csv")))


def read_timing(path: Path) -> dict | None:
    """A pod's timing file (traffic/pod.py): {"overrun": {buckets}, "replies"}."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
