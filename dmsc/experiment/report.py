"""The report of an experiment: figures computed from the raw files, plots, report.md.

Everything here reads only the results folder (``runs.json``, each run's
``calls.jsonl``, ``fib.jsonl``, ``control.csv``, ``resources.csv``,
``events.jsonl``), so a report can be rebuilt from the data alone
(``dmsc experiment --report DIR``). How each figure is computed is written in
docs/experiments.md; in short:

* success: calls answered / calls scheduled (a call the load generator
  could not send in time is not answered); latency percentiles over answered
  calls, from an HdrHistogram (open loop: from each call's intended send time);
* longest outage: per flow, from the send time of the first failed call of a
  run of failures to the send time of the next answered call (or the flow's
  last call), the longest over all flows;
* time to converge after an event, per switch: the time of the switch's last
  FIB change after the event and before the next event (or the end), minus
  the event's time; the event's figure is the largest over the switches
  (a switch whose FIB did not change is not counted: a hijack refused shows
  "no FIB changed");
* control frames per second: the increase of each switch's punt counter
  between two samples, divided by the time between them; summed over switches;
* memory and CPU: per process from /proc, summed per kind (agent, central,
  bmv2, spa, scsc, pod; mesh mode: mesh-control, http-pod, sidecar, haproxy) at
  each sample; the control plane is agent (and agent host) + central + spa + scsc
  (mesh mode: mesh-control + spa; the sidecars are the data plane's proxies).

Each run has a fidelity verdict (dmsc/fidelity.py: ``ok``, ``degraded``,
``invalid`` or ``unknown`` for a run recorded without the monitors) with its
reasons. With repetitions, each figure is the median over the runs that are
not ``invalid``, with the range (min-max) beside it; the report says how many
runs were left out.
"""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

CONTROL_KINDS = ("agent", "agent host", "central", "spa", "scsc",   # "agent host": several agents in one process
                 "mesh-control")                                     # the mesh mode's (docs/mesh.md)
BIN_S = 0.5


# -- reading: dmsc/run_files.py (the fidelity monitors read the same files) ------------------------
from dmsc.run_files import read_csv as _csv, read_jsonl as _jsonl  # noqa: E402,F401


# -- figures of one run ----------------------------------------------------------------------------
def call_figures(calls: list[dict]) -> dict:
    """Every scheduled call counts: answered / scheduled (a call the load
    generator never sent, ``not_sent``, is not answered); latency percentiles
    from an HdrHistogram of the answered calls' latencies (open loop: from the
    intended send time); the generator's lateness against its schedule."""
    from traffic.loadgen import NOT_SENT, new_histogram, percentiles_ms
    scheduled = len(calls)
    ok = [c for c in calls if c["status"] == "ok"]
    h = new_histogram()
    for c in ok:
        h.record_value(max(1, round(c["latency_ms"] * 1000)))
    late = new_histogram()
    for c in calls:
        if c.get("late_ms") is not None:
            late.record_value(max(1, round(c["late_ms"] * 1000)))
    q = percentiles_ms(h)

    def r2(v):
        return None if v is None else round(v, 2)
    not_sent = sum(1 for c in calls if c["status"] == NOT_SENT)
    return {"scheduled": scheduled, "sent": scheduled - not_sent, "not_sent": not_sent,
            "ok": len(ok), "failed": scheduled - len(ok),
            "success_pct": round(100.0 * len(ok) / scheduled, 2) if scheduled else None,
            "p50_ms": r2(q["p50_ms"]), "p99_ms": r2(q["p99_ms"]), "p999_ms": r2(q["p999_ms"]),
            "loadgen_late_p99_ms": r2(percentiles_ms(late)["p99_ms"]),
            "longest_outage_ms": longest_outage_ms(calls),
            "responders": dict(sorted(_count(c.get("responder") for c in ok).items()))}


def _count(xs) -> dict:
    out: dict = defaultdict(int)
    for x in xs:
        out[x] += 1
    return out


def longest_outage_ms(calls: list[dict]) -> float:
    """Per flow, in send order: from the first failure of a run of failures
    to the next success (or the flow's last call)."""
    worst = 0.0
    by_flow = defaultdict(list)
    for c in calls:
        by_flow[c.get("flow", "")].append(c)
    for cs in by_flow.values():
        cs.sort(key=lambda c: c["t"])
        start = None
        for c in cs:
            if c["status"] != "ok":
                if start is None:
                    start = c["t"]
            elif start is not None:
                worst = max(worst, c["t"] - start)
                start = None
        if start is not None:
            worst = max(worst, cs[-1]["t"] - start)
    return round(worst * 1000, 1)


MOVES = ("degrade", "kill_pod", "stop_pod")     # events that should move calls off a pod


def event_calls(events: list[dict], calls: list[dict], instances: dict[str, list[str]],
                t_end: float) -> list[dict]:
    """What the calls did after each event (traffic steps excluded), until the
    next event (or the end), for every mode alike:

    * ``scheduled``/``failed``: calls intended in that window, of every flow;
    * an event that should move calls off a pod (a pod slowed, killed or
      stopped: MOVES; a degrade to 0 ms restores and is not one) ``moved_ms``:
      from the event to the intended time of the last call in the window that
      the pod's instances answered, that failed, or (a pod slowed by S ms)
      that took S/2 or longer: a call retried elsewhere after a per-try
      time-out still paid for the slow pod (0: no call did; None with
      ``not_moved``: the pod still answered calls, or calls still failed, at
      the window's end, i.e. among its last 10 % of calls);
    * ``announce``: ``callable_ms``, from the event to the first call answered
      by the announced name (None: none before the end)."""
    evs = [e for e in events if e["do"] != "traffic"]
    out = []
    for i, e in enumerate(evs):
        te = e["t"]
        nxt = evs[i + 1]["t"] if i + 1 < len(evs) else t_end
        win = sorted((c for c in calls if te <= c["t"] < nxt), key=lambda c: c["t"])
        row = {"t": te, "label": e["label"], "do": e["do"], "scheduled": len(win),
               "failed": sum(1 for c in win if c["status"] != "ok"), "error": e.get("error")}
        p = e.get("params", {})
        if e["do"] in MOVES and not (e["do"] == "degrade" and not p.get("service_ms")):
            mine = set(instances.get(p.get("pod"), []))
            slow_ms = p["service_ms"] / 2 if e["do"] == "degrade" else None
            hit = [c for c in win if c["status"] != "ok" or c.get("responder") in mine
                   or (slow_ms is not None and (c.get("latency_ms") or 0) >= slow_ms)]
            tail = win[int(0.9 * len(win)):]
            row["pod_answered"] = sum(1 for c in win if c["status"] == "ok"
                                      and c.get("responder") in mine)
            row["not_moved"] = any(c["status"] != "ok" or c.get("responder") in mine
                                   for c in tail)
            row["moved_ms"] = None if row["not_moved"] or not win else \
                round((max((c["t"] for c in hit), default=te) - te) * 1000, 1)
        if e["do"] == "announce":
            name = p.get("prefix")
            ok = [c["t"] for c in calls if c["t"] >= te and c["status"] == "ok"
                  and c.get("responder") == name]
            row["callable_ms"] = round((min(ok) - te) * 1000, 1) if ok else None
        out.append(row)
    return out


def event_call_cell(x: dict) -> str:
    if x.get("error"):
        return "step failed"
    s = f"{x['scheduled'] - x['failed']} of {x['scheduled']} answered"
    if "moved_ms" in x:
        s = (f"not moved by the next event ({x['pod_answered']} answered by the pod)"
             if x["not_moved"]
             else f"moved after {x['moved_ms']:g} ms") + f"; {x['failed']} lost; " + s
    if "callable_ms" in x:
        s = ("callable after " + f"{x['callable_ms']:g} ms" if x["callable_ms"] is not None
             else "never callable") + "; " + s
    return s


def convergence(events: list[dict], fib: list[dict], t_end: float) -> list[dict]:
    """Per event (traffic steps excluded): each switch's time to its last
    FIB change before the next event, and the largest."""
    evs = [e for e in events if e["do"] != "traffic"]
    out = []
    for i, e in enumerate(evs):
        te = e["t"]
        nxt = evs[i + 1]["t"] if i + 1 < len(evs) else t_end
        last: dict[str, float] = {}
        changes = 0
        for line in fib:
            if te <= line["t"] < nxt:
                last[line["switch"]] = line["t"]
                changes += 1
        per = {s: round((t - te) * 1000, 1) for s, t in sorted(last.items())}
        out.append({"t": te, "label": e["label"], "do": e["do"], "per_switch_ms": per,
                    "max_ms": max(per.values()) if per else None, "fib_writes": changes,
                    "error": e.get("error"), "result": e.get("result")})
    return out


def control_series(rows: list[dict]) -> tuple[list[float], list[float], dict]:
    """(times, total control frames/s, {switch: mean frames/s}) from control.csv."""
    by_sw = defaultdict(list)
    for r in rows:
        by_sw[r["switch"]].append((float(r["t"]), int(r["punted"])))
    rates = defaultdict(float)
    per_sw = {}
    for s, pts in by_sw.items():
        pts.sort()
        total, span = 0, 0.0
        for (t1, p1), (t2, p2) in zip(pts, pts[1:]):
            if p2 < p1 or t2 <= t1:          # a restarted switch: counters start over
                continue
            r = (p2 - p1) / (t2 - t1)
            rates[round(t2 / BIN_S) * BIN_S] += r
            total += p2 - p1
            span += t2 - t1
        per_sw[s] = round(total / span, 1) if span else None
    ts = sorted(rates)
    return ts, [round(rates[t], 1) for t in ts], per_sw


def lost_before_p4(rows: list[dict]) -> int | None:
    """Frames the kernel received on the switches' ports but the P4 program
    never counted (port_in), over the run, all switches: per switch the
    increase of kernel_rx minus the increase of port_in between its first and
    last sample (a restarted switch's counters start over: its samples after
    the restart only)."""
    by_sw = defaultdict(list)
    for r in rows:
        if r.get("kernel_rx") in (None, ""):
            return None
        by_sw[r["switch"]].append((float(r["t"]), int(r["port_in"]), int(r["kernel_rx"])))
    total = 0
    for pts in by_sw.values():
        pts.sort()
        start = 0
        for i in range(1, len(pts)):
            if pts[i][1] < pts[i - 1][1]:
                start = i
        (_t1, p1, k1), (_t2, p2, k2) = pts[start], pts[-1]
        total += max(0, (k2 - k1) - (p2 - p1))
    return total


def resource_figures(rows: list[dict]) -> dict:
    """{kind: {"peak_rss_mb", "mean_cpu_pct"}} summed over the kind's processes per sample."""
    rss = defaultdict(lambda: defaultdict(float))
    cpu = defaultdict(lambda: defaultdict(float))
    for r in rows:
        t = r["t"]
        rss[r["kind"]][t] += float(r["rss_mb"])
        if r["cpu_pct"] != "":
            cpu[r["kind"]][t] += float(r["cpu_pct"])
    out = {}
    for kind in sorted(rss):
        c = list(cpu[kind].values())
        out[kind] = {"peak_rss_mb": round(max(rss[kind].values()), 1),
                     "mean_cpu_pct": round(statistics.mean(c), 1) if c else None}
    ctl_t = set()
    for k in CONTROL_KINDS:
        ctl_t |= set(rss[k])
    if ctl_t:
        out["control plane"] = {
            "peak_rss_mb": round(max(sum(rss[k].get(t, 0) for k in CONTROL_KINDS)
                                     for t in ctl_t), 1),
            "mean_cpu_pct": round(statistics.mean(
                [sum(cpu[k].get(t, 0) for k in CONTROL_KINDS) for t in ctl_t]), 1)}
    return out


def run_figures(run_dir: Path, info: dict) -> dict:
    calls = _jsonl(run_dir / "calls.jsonl")
    events = _jsonl(run_dir / "events.jsonl")
    fib = _jsonl(run_dir / "fib.jsonl")
    t_end = info.get("t_end") or 0.0
    ctl_rows = _csv(run_dir / "control.csv")
    ts, rate, per_sw = control_series(ctl_rows)
    steady = [r for t, r in zip(ts, rate) if t > 0]
    conv = convergence(events, fib, t_end)
    return {"calls": call_figures(calls), "events": conv,
            "event_calls": event_calls(events, calls, info.get("instances") or {}, t_end)
            if calls else [],
            "control_frames_per_s": round(statistics.mean(steady), 1) if steady else None,
            "control_per_switch": per_sw,
            "lost_before_p4": lost_before_p4(ctl_rows) if ctl_rows else None,
            "resources": resource_figures(_csv(run_dir / "resources.csv")),
            "cold_start_s": info.get("cold_start_s"),
            "fib_writes_after_t0": sum(1 for x in fib if x["t"] >= 0),
            "fidelity": fidelity_of(run_dir, info),
            "errors": list(info.get("errors", [])) + [f"step {e['label']}: {e['error']}"
                                                      for e in events if e.get("error")]}


def fidelity_of(run_dir: Path, info: dict) -> dict:
    """The run's verdict from its files (the same as run.json's when the
    runner wrote one; a report rebuilt from older data computes it here)."""
    from dmsc import fidelity
    return fidelity.run_verdict(run_dir).to_dict()


# -- aggregation ---------------------------------------------------------------------------------------
def _sum_counts(dicts) -> dict:
    out: dict = defaultdict(int)
    for d in dicts:
        for k, v in d.items():
            out[k] += v
    return dict(sorted(out.items()))


def _med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, None
    return round(statistics.median(xs), 2), min(xs), max(xs)


def traffic_loops(exp: dict) -> str:
    """A sentence saying how the traffic steps loaded the network."""
    steps = [s for s in exp.get("steps", []) if s.get("do") == "traffic"]
    if not steps:
        return ""
    kinds = sorted({(s.get("loop", "closed"), s.get("arrivals", "constant")) for s in steps})
    parts = []
    for loop, arrivals in kinds:
        if loop == "open":
            parts.append(f"open loop ({arrivals} arrivals: calls sent on a schedule "
                         "whatever the answers do; each call's latency from its intended "
                         "send time; a call the generator could not send in time counts as "
                         "not answered)")
        else:
            parts.append("closed loop (one call in flight, the next sent when the last "
                         "returns: latency is service time, a stall is not counted)")
    return "Traffic: " + "; ".join(parts) + "."


def _fmt(triple, unit="", n_runs=1) -> str:
    m, lo, hi = triple
    if m is None:
        return "-"
    if n_runs > 1 and lo != hi:
        return f"{m:g}{unit} ({lo:g}-{hi:g})"
    return f"{m:g}{unit}"


def summarize(runs: list[dict]) -> dict:
    """{(topology, mode): aggregated figures} over the repetitions."""
    groups = defaultdict(list)
    for r in runs:
        groups[(r["topology"], r["mode"])].append(r)
    out = {}
    for key, rs in groups.items():
        measured = [r for r in rs if "figures" in r]
        ok = [r for r in measured if r["figures"].get("fidelity", {}).get("level") != "invalid"]
        f = [r["figures"] for r in ok]
        verdicts = [r["figures"].get("fidelity", {}).get("level", "unknown") for r in measured]
        n_events = max((len(x["events"]) for x in f), default=0)
        ev = []
        for i in range(n_events):
            vals = [x["events"][i]["max_ms"] for x in f if i < len(x["events"])]
            label = next(x["events"][i]["label"] for x in f if i < len(x["events"]))
            t = next(x["events"][i]["t"] for x in f if i < len(x["events"]))
            unchanged = sum(1 for v in vals if v is None)
            ev.append({"label": label, "t": t, "max_ms": _med(vals), "unchanged_runs": unchanged,
                       "runs": len(vals)})
        out[key] = {
            "runs": len(rs), "ok_runs": len(ok),
            "invalid_runs": verdicts.count("invalid"),
            "fidelity": {v: verdicts.count(v) for v in ("ok", "degraded", "invalid", "unknown")
                         if v in verdicts},
            "switches": rs[0].get("switches"),
            "success_pct": _med([x["calls"]["success_pct"] for x in f]),
            "scheduled": _med([x["calls"].get("scheduled", x["calls"]["sent"]) for x in f]),
            "not_sent": _med([x["calls"].get("not_sent") for x in f]),
            "responders": _sum_counts([x["calls"]["responders"] for x in f]),
            "p50_ms": _med([x["calls"]["p50_ms"] for x in f]),
            "p99_ms": _med([x["calls"]["p99_ms"] for x in f]),
            "p999_ms": _med([x["calls"].get("p999_ms") for x in f]),
            "loadgen_late_p99_ms": _med([x["calls"].get("loadgen_late_p99_ms") for x in f]),
            "longest_outage_ms": _med([x["calls"]["longest_outage_ms"] for x in f]),
            "cold_start_s": _med([x["cold_start_s"] for x in f]),
            "control_frames_per_s": _med([x["control_frames_per_s"] for x in f]),
            "lost_before_p4": _med([x.get("lost_before_p4") for x in f]),
            "control_rss_mb": _med([x["resources"].get("control plane", {}).get("peak_rss_mb")
                                    for x in f]),
            "control_cpu_pct": _med([x["resources"].get("control plane", {}).get("mean_cpu_pct")
                                     for x in f]),
            "events": ev,
            "errors": [e for r in rs for e in (r.get("figures", {}).get("errors")
                                               or r.get("errors", []))],
        }
    return out


# -- plots ------------------------------------------------------------------------------------------------
def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _mark_events(ax, events, label=True):
    for e in events:
        if e["do"] == "traffic":
            continue
        ax.axvline(e["t"], color="grey", linestyle="--", linewidth=0.8)
        if label:
            ax.annotate(e["label"], (e["t"], 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=7, color="dimgrey")


def monitor_series(run_dir: Path) -> dict:
    """The fidelity monitors over time, for the plots: host (t, CPU pressure %,
    least busy core %), the load generator's lateness per call, and per sample
    interval the worst bucket the pods' overrun / agents' tick lateness
    reached and the frames lost before P4 (all ports)."""
    from dmsc import fidelity
    host = fidelity.read_host_csv(_csv(run_dir / "host.csv"))
    out = {"host_t": [h["t"] for h in host],
           "pressure": [h["cpu_pressure_pct"] for h in host],
           "busy_min": [min(h["busy_pct"]) if h["busy_pct"] else None for h in host],
           "late": [(c["t"], c["late_ms"]) for c in _jsonl(run_dir / "calls.jsonl")
                    if c.get("late_ms") is not None]}
    for name, fn in (("pods", "pods.csv"), ("ticks", "ticks.csv")):
        prev: dict = {}
        worst: dict = defaultdict(float)
        for r in _csv(run_dir / fn):
            h = fidelity.Histogram.from_dict(r)
            before = prev.get(r["name"])
            prev[r["name"]] = h
            if before is None:
                continue
            d = h.since(before)
            if d.total:
                t = round(float(r["t"]) / BIN_S) * BIN_S
                worst[t] = max(worst[t], d.quantile_ms(1.0))
        out[name] = sorted(worst.items())
    # frames lost before P4 since the first sample, all ports (per port from its
    # first sample, or from a restart: the counters start over), per 0.5 s bin
    first: dict = {}
    per_port: dict = {}
    lost = {}
    for r in _csv(run_dir / "ports.csv"):
        k = (r["switch"], r["port"])
        cur = (int(r["kernel_rx"]), int(r["p4_in"]))
        b = first.get(k)
        if b is None or cur[1] < per_port.get(k, (0, 0))[1]:
            first[k] = b = cur
        per_port[k] = cur
        lost[round(float(r["t"]) / BIN_S) * BIN_S] = sum(
            max(0, (c[0] - first[q][0]) - (c[1] - first[q][1])) for q, c in per_port.items())
    out["lost"] = sorted(lost.items())
    return out


def _plot_monitors(ax_host, ax_late, run_dir: Path, events) -> None:
    m = monitor_series(run_dir)
    if m["host_t"]:
        ax_host.plot(m["host_t"], [v if v is not None else float("nan") for v in m["pressure"]],
                     color="C3", label="some task waited for a CPU (% of time)")
        ax_host.plot(m["host_t"], [v if v is not None else float("nan") for v in m["busy_min"]],
                     color="C7", linewidth=0.8, label="least busy core (%)")
    ax_host.set_ylim(-5, 105)
    ax_host.set_ylabel("host CPU (%)")
    if m["host_t"]:
        ax_host.legend(loc="upper right", fontsize=7)
    _mark_events(ax_host, events, label=False)
    if m["late"]:
        ax_late.scatter([t for t, _ in m["late"]], [max(v, 0.01) for _, v in m["late"]], s=3,
                        color="C0", label="load generator: call sent late")
    for key, colour, lab in (("pods", "C1", "pods: answer past its service time (worst)"),
                             ("ticks", "C2", "agents: protocol tick late (worst)")):
        if m[key]:
            ax_late.step([t for t, _ in m[key]], [min(v, 2000) for _, v in m[key]], where="mid",
                         color=colour, label=lab)
    if m["lost"] and any(v for _, v in m["lost"]):
        ax_lost = ax_late.twinx()
        ax_lost.step([t for t, _ in m["lost"]], [v for _, v in m["lost"]], where="post",
                     color="red", alpha=0.6)
        ax_lost.set_ylim(bottom=0)
        ax_lost.set_ylabel("frames lost before P4 (since t=0)", color="red", fontsize=8)
    ax_late.set_yscale("log")
    ax_late.set_ylabel("lateness (ms)")
    ax_late.set_xlabel("time since the network converged (s)")
    if ax_late.get_legend_handles_labels()[0]:
        ax_late.legend(loc="upper right", fontsize=7)
    _mark_events(ax_late, events, label=False)


def plot_calls(run_dirs: dict[str, Path], path: Path, title: str) -> None:
    """Latency of each answered call, coloured by the instance that answered
    (top), the share answered per 0.5 s, and below them the fidelity monitors
    over the same time (host CPU; the load generator's, pods' and agents'
    lateness, frames lost before P4), one column per mode, events marked."""
    plt = _plt()
    modes = list(run_dirs)
    fig, axes = plt.subplots(4, len(modes), figsize=(6.5 * len(modes), 10), squeeze=False,
                             sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.5, 1.5]})
    for j, mode in enumerate(modes):
        calls = _jsonl(run_dirs[mode] / "calls.jsonl")
        events = _jsonl(run_dirs[mode] / "events.jsonl")
        ok = [c for c in calls if c["status"] == "ok"]
        bad = [c for c in calls if c["status"] != "ok"]
        ax = axes[0][j]
        by_resp = defaultdict(list)
        for c in ok:
            by_resp[c.get("responder") or "?"].append(c)
        for k, (resp, cs) in enumerate(sorted(by_resp.items(), key=lambda kv: -len(kv[1]))):
            ax.scatter([c["t"] for c in cs], [c["latency_ms"] for c in cs], s=3,
                       color=f"C{k % 10}", label=f"answered by {resp} ({len(cs)})")
        if bad:
            ax.scatter([c["t"] for c in bad], [0.1] * len(bad), s=6, marker="x", color="red",
                       label=f"failed ({len(bad)})")
        ax.set_yscale("log")
        ax.set_ylabel("call latency (ms)")
        ax.set_title(f"{mode}")
        ax.legend(loc="upper right", fontsize=7)
        _mark_events(ax, events)
        bins = defaultdict(lambda: [0, 0])
        for c in calls:
            b = int(c["t"] // BIN_S) * BIN_S
            bins[b][1] += 1
            bins[b][0] += c["status"] == "ok"
        xs = sorted(bins)
        ax2 = axes[1][j]
        ax2.step(xs, [100 * bins[x][0] / bins[x][1] for x in xs], where="post")
        ax2.set_ylim(-5, 105)
        ax2.set_ylabel(f"answered per {BIN_S:g} s (%)")
        _mark_events(ax2, events, label=False)
        _plot_monitors(axes[2][j], axes[3][j], run_dirs[mode], events)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_convergence(figs: dict[str, dict], path: Path, title: str) -> None:
    """Per event, each switch's time to its last FIB change (one dot per
    switch), one colour per mode."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = []
    for j, (mode, f) in enumerate(figs.items()):
        for i, e in enumerate(f["events"]):
            if j == 0:
                labels.append(f"{e['t']:.0f}s {e['label']}")
            vals = list(e["per_switch_ms"].values())
            x = i + (j - (len(figs) - 1) / 2) * 0.2
            ax.scatter([x] * len(vals), vals, s=14, label=mode if i == 0 else None,
                       color=f"C{j}")
            if not vals:
                ax.annotate("no FIB\nchanged", (x, 0), xycoords=("data", "axes fraction"),
                            xytext=(0, 4), textcoords="offset points", ha="center",
                            fontsize=7, color=f"C{j}")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("time to the switch's last FIB change (ms)")
    ax.set_title(title)
    if figs:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_control(run_dirs: dict[str, Path], path: Path, title: str, duration: float) -> None:
    """Control frames to the switches' CPU ports per second, all switches
    summed, one line per mode, events marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    events = []
    for j, (mode, rd) in enumerate(run_dirs.items()):
        ts, rate, _ = control_series(_csv(rd / "control.csv"))
        ax.plot(ts, rate, label=mode, color=f"C{j}")
        events = events or _jsonl(rd / "events.jsonl")
    _mark_events(ax, events)
    ax.set_xlim(left=0, right=duration)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time since the network converged (s)")
    ax.set_ylabel("control frames punted per s (all switches)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(summary: dict, path: Path, title: str) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    modes = sorted({m for _t, m in summary})
    for j, mode in enumerate(modes):
        pts = sorted((v["switches"], v) for (t, m), v in summary.items() if m == mode)
        xs = [p[0] for p in pts]
        for ax, key, lab in zip(axes, ("cold_start_s", "control_frames_per_s", "control_rss_mb"),
                                ("cold start to converged (s)", "control frames per s",
                                 "control-plane memory (MB)")):
            ys = [p[1][key][0] for p in pts]
            ax.plot([x for x, y in zip(xs, ys) if y is not None],
                    [y for y in ys if y is not None], marker="o", label=mode, color=f"C{j}")
            ax.set_xlabel("switches")
            ax.set_ylabel(lab)
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- report.md -------------------------------------------------------------------------------------------
def write(out: Path) -> Path:
    """Compute every figure from the raw files of ``out`` and write
    ``summary.json``, the PNGs and ``report.md``; returns report.md's path."""
    import yaml
    out = Path(out)
    exp = yaml.safe_load((out / "experiment.yaml").read_text())
    versions = json.loads((out / "versions.json").read_text())
    runs = json.loads((out / "runs.json").read_text())
    for r in runs:
        rd = out / r["dir"]
        if r.get("t0_monotonic") is not None and rd.is_dir():
            r["figures"] = run_figures(rd, r)
    summary = summarize(runs)
    (out / "summary.json").write_text(json.dumps(
        {f"{t} {m}": v for (t, m), v in summary.items()}, indent=1))
    topos = list(dict.fromkeys(r["topology"] for r in runs))
    modes = list(dict.fromkeys(r["mode"] for r in runs))
    n_rep = exp["repeat"]
    L = [f"# Experiment `{exp['name']}`", ""]
    if exp.get("description"):
        L += [exp["description"].strip(), ""]
    L += [f"Run on {versions['date_utc']} UTC, commit `{(versions.get('git_commit') or '?')[:12]}`"
          f"{' (with local changes)' if versions.get('git_dirty') else ''}, "
          f"{versions.get('cpus')} CPUs, kernel {versions.get('kernel')}, "
          f"BMv2 `{versions.get('bmv2') or '?'}`"
          + (" (the perf build: no logging macros, -O3; docs/dataplane.md)"
             if (exp.get("network") or {}).get("bmv2") == "perf" else "") + ". "
          f"Topolog{'ies' if len(topos) > 1 else 'y'} {', '.join(f'`{t}`' for t in topos)}; "
          f"mode{'s' if len(modes) > 1 else ''} {', '.join(modes)}; {exp['duration']:g} s per "
          f"run; {n_rep} run{'s' if n_rep > 1 else ''} each"
          + (" (figures: median, range in brackets)" if n_rep > 1 else "") + ".",
          "", f"Regenerate: `sudo .venv/bin/dmsc experiment {exp['source']}"
          + ("" if len(modes) < 2 else " --both" if modes == ["distributed", "central"]
             else f" --mode {','.join(modes)}") + "`; rebuild this report from the data: "
          f"`dmsc experiment --report <results dir>`. Files: docs/experiments.md.", ""]
    loops = traffic_loops(exp)
    if loops:
        L += [loops, ""]
    L += fidelity_lines(runs, summary, topos, modes)
    L += ["## Summary", ""]
    cols = [(t, m) for t in topos for m in modes if (t, m) in summary]
    head = "| | " + " | ".join(f"{t} {m}" if len(topos) > 1 else m for t, m in cols) + " |"
    L += [head, "|---" * (len(cols) + 1) + "|"]
    rows = [("switches", "switches", ""), ("cold start to converged", "cold_start_s", " s"),
            ("calls scheduled", "scheduled", ""), ("calls answered", "success_pct", " %"),
            ("calls not sent (load generator behind)", "not_sent", ""),
            ("answered by", "responders", ""),
            ("latency p50", "p50_ms", " ms"), ("latency p99", "p99_ms", " ms"),
            ("latency p99.9", "p999_ms", " ms"),
            ("load generator late p99", "loadgen_late_p99_ms", " ms"),
            ("longest outage", "longest_outage_ms", " ms"),
            ("control frames / s (all switches)", "control_frames_per_s", ""),
            ("frames lost before the P4 program", "lost_before_p4", ""),
            ("control-plane memory (peak)", "control_rss_mb", " MB"),
            ("control-plane CPU (mean)", "control_cpu_pct", " %")]
    for label, key, unit in rows:
        cells = []
        for c in cols:
            v = summary[c][key]
            if key == "switches":
                cells.append(str(v))
            elif key == "responders":
                cells.append(", ".join(f"{r} {n}" for r, n in v.items()) or "-")
            else:
                cells.append(_fmt(v, unit, n_rep))
        L.append(f"| {label} | " + " | ".join(cells) + " |")
    L.append("| fidelity | " + " | ".join(_fidelity_cell(summary[c]) for c in cols) + " |")
    L.append("")
    # events
    for t in topos:
        ev_cols = [m for m in modes if (t, m) in summary]
        events = max((summary[(t, m)]["events"] for m in ev_cols), key=len, default=[])
        if not events:
            continue
        L += [f"## Time to converge after each event{f' ({t})' if len(topos) > 1 else ''}", "",
              "Largest over the switches of the time from the event to the switch's last FIB "
              "change before the next event.", "",
              "| t | event | " + " | ".join(ev_cols) + " |", "|---|---|" + "---|" * len(ev_cols)]
        for i, e in enumerate(events):
            cells = []
            for m in ev_cols:
                es = summary[(t, m)]["events"]
                if i >= len(es):
                    cells.append("-")
                    continue
                x = es[i]
                if x["max_ms"][0] is None:
                    cells.append("no FIB changed")
                else:
                    cells.append(_fmt(x["max_ms"], " ms", n_rep)
                                 + (f" ({x['unchanged_runs']} of {x['runs']} runs: none)"
                                    if x["unchanged_runs"] else ""))
            label = " / ".join(dict.fromkeys(         # steps that differ by mode (only:)
                summary[(t, m)]["events"][i]["label"] for m in ev_cols
                if i < len(summary[(t, m)]["events"])))
            L.append(f"| {e['t']:.1f} s | {label} | " + " | ".join(cells) + " |")
        L.append("")
    # figures per topology
    for t in topos:
        first = {}
        for m in modes:
            r = typical_run([r for r in runs if r["topology"] == t and r["mode"] == m])
            if r is not None:
                first[m] = out / r["dir"]
        if not first:
            continue
        slug = _slug(t)
        sfx = f" ({t})" if len(topos) > 1 else ""
        if any(_jsonl(d / "calls.jsonl") for d in first.values()):
            plot_calls(first, out / f"calls-{slug}.png", f"{exp['name']}{sfx}: calls ({_which(first)})")
            L += [f"## Calls over time{sfx}", "", f"![calls](calls-{slug}.png)", "",
                  "Each dot an answered call (latency, log scale; colour: the instance that answered); crosses at the bottom "
                  "failed calls; below, the share answered per 0.5 s; dashed lines the "
                  f"events. {_which(first)}: of several runs, the one whose share of calls "
                  f"answered is the median.", ""]
        figs = {m: next(r["figures"] for r in runs if out / r["dir"] == d)
                for m, d in first.items()}
        if any(f["events"] for f in figs.values()):
            plot_convergence(figs, out / f"convergence-{slug}.png",
                             f"{exp['name']}{sfx}: time to converge per switch ({_which(first)})")
            L += [f"## Convergence per switch{sfx}", "",
                  f"![convergence](convergence-{slug}.png)", ""]
            for m, f in figs.items():
                for e in f["events"]:
                    per = ", ".join(f"{s} {v:g}" for s, v in e["per_switch_ms"].items())
                    res = _short(e.get("result"))
                    L.append(f"- {m}, {e['t']:.1f} s {e['label']}: "
                             + (f"per switch (ms): {per}" if per else "no FIB changed")
                             + (f"; result: {res}" if res else "")
                             + (f"; **error: {e['error']}**" if e.get("error") else ""))
            L.append("")
        ecs = {m: f.get("event_calls") for m, f in figs.items() if f.get("event_calls")}
        if ecs:
            n = max(len(v) for v in ecs.values())
            labels = next(v for v in ecs.values() if len(v) == n)
            L += [f"## Calls after each event{sfx} ({_which(first)})", "",
                  "Calls intended from the event to the next one (every flow). A pod slowed, "
                  "killed or stopped: how long until its instances answered no more calls "
                  "and none failed (the last such call's intended time minus the event's), "
                  "and the calls lost meanwhile; an instance announced: until the first "
                  "call it answered.", "",
                  "| t | event | " + " | ".join(ecs) + " |", "|---|---|" + "---|" * len(ecs)]
            for i, e in enumerate(labels):
                cells = [event_call_cell(v[i]) if i < len(v) else "-" for v in ecs.values()]
                label = " / ".join(dict.fromkeys(v[i]["label"] for v in ecs.values()
                                                 if i < len(v)))
                L.append(f"| {e['t']:.1f} s | {label} | " + " | ".join(cells) + " |")
            L.append("")
        if any(_csv(d / "control.csv") for d in first.values()):
            plot_control(first, out / f"control-{slug}.png",
                         f"{exp['name']}{sfx}: control traffic ({_which(first)})", exp["duration"])
            L += [f"## Control traffic{sfx}", "", f"![control](control-{slug}.png)", ""]
        L += call_graph_section(out, first, sfx)
        res_rows = []
        for m, f in figs.items():
            for kind, v in f["resources"].items():
                res_rows.append(f"| {m} | {kind} | {v['peak_rss_mb']:g} | "
                                f"{'-' if v['mean_cpu_pct'] is None else v['mean_cpu_pct']} |")
        if res_rows:
            L += [f"## Processes{sfx} ({_which(first)})", "",
                  "| mode | kind | peak memory, all processes of the kind (MB) | mean CPU (%) |",
                  "|---|---|---|---|", *res_rows, ""]
    if len(topos) > 1:
        plot_sweep(summary, out / "sweep.png", f"{exp['name']}: by network size")
        L += ["## By network size", "", "![sweep](sweep.png)", ""]
    errs = [(k, e) for k, v in summary.items() for e in v["errors"]]
    if errs:
        L += ["## What did not work", ""]
        L += [f"- {t} {m}: {e}" for (t, m), e in errs]
        L.append("")
    L += ["## Versions", "", "```", json.dumps(versions, indent=1), "```", ""]
    path = out / "report.md"
    path.write_text("\n".join(L))
    return path


def call_graph_figures(spans: list[dict], app=None) -> dict:
    """From a run's spans (spans.jsonl): per root method, the requests, the
    share whose tree is the file's call graph (with ``app``), the root span's
    time p50/p99 and per hop (caller > callee, by depth) the caller's latency,
    the callee's own time and the difference (network and queues), p50/p99,
    and the instances that answered."""
    from traffic import callgraph
    from traffic.loadgen import new_histogram, percentiles_ms
    roots = callgraph.trees(spans)
    by_root: dict = defaultdict(lambda: {"requests": 0, "ok": 0, "match": 0, "h": new_histogram()})
    hop: dict = {}
    for root in roots.values():
        k = f"{root['service']}.{root['method']}"
        r = by_root[k]
        r["requests"] += 1
        if root["status"] == "ok":
            r["ok"] += 1
            r["h"].record_value(max(1, round((root["t_out"] - root["t_in"]) * 1e6)))
        if app is not None and not callgraph.check_tree(root, app):
            r["match"] += 1
        for h in callgraph.hops(root):
            key = (k, h["depth"], h["caller"], h["callee"])
            x = hop.setdefault(key, {"calls": 0, "failed": 0, "lat": new_histogram(),
                                     "net": new_histogram(), "instances": defaultdict(int)})
            x["calls"] += 1
            if h["status"] != "ok":
                x["failed"] += 1
                continue
            x["lat"].record_value(max(1, round(h["latency_ms"] * 1000)))
            if h["network_ms"] is not None:
                x["net"].record_value(max(1, round(h["network_ms"] * 1000)))
            x["instances"][h["instance"]] += 1
    out = {}
    for k, r in by_root.items():
        q = percentiles_ms(r["h"])
        out[k] = {"requests": r["requests"], "ok": r["ok"],
                  "match_pct": round(100 * r["match"] / r["requests"], 2) if app else None,
                  "p50_ms": q["p50_ms"], "p99_ms": q["p99_ms"], "hops": []}
    for (k, depth, caller, callee), x in hop.items():
        lq, nq = percentiles_ms(x["lat"]), percentiles_ms(x["net"])
        out[k]["hops"].append({"depth": depth, "caller": caller, "callee": callee,
                               "calls": x["calls"], "failed": x["failed"],
                               "p50_ms": lq["p50_ms"], "p99_ms": lq["p99_ms"],
                               "network_p99_ms": nq["p99_ms"],
                               "instances": dict(sorted(x["instances"].items()))})
    return out


def call_graph_section(out: Path, first: dict, sfx: str) -> list[str]:
    """The report's call-graph section: where each request's time went."""
    runs = {m: _jsonl(d / "spans.jsonl") for m, d in first.items()}
    if not any(runs.values()):
        return []
    app = None
    if (out / "application.yaml").exists():
        from traffic import callgraph
        app = callgraph.load(out / "application.yaml")
    L = [f"## Call graph{sfx} ({_which(first)})", "",
         "Each request's tree, put back together from the spans the pods wrote "
         "(`spans.jsonl`): per root method, the requests, the share whose tree is the "
         "application file's call graph, the front end's own time (p50/p99); per hop, "
         "the caller's latency p50/p99, its network-and-queue part p99 (caller's latency "
         "minus the callee's own time) and the instances that answered.", ""]
    def ms(v):
        return _fmt((None if v is None else round(v, 2), 0, 0), " ms")
    for m, spans in runs.items():
        figs = call_graph_figures(spans, app)
        for root, f in sorted(figs.items()):
            L += [f"**{m}, {root}**: {f['requests']} requests, {f['ok']} answered"
                  + (f", {f['match_pct']:g} % trees as the file says" if app else "")
                  + f"; in the front end p50 {ms(f['p50_ms'])}, p99 {ms(f['p99_ms'])}.", "",
                  "| depth | call | calls | failed | latency p50 | p99 | network p99 | "
                  "answered by |", "|---|---|---|---|---|---|---|---|"]
            for h in sorted(f["hops"], key=lambda h: (h["depth"], h["caller"], h["callee"])):
                inst = ", ".join(f"{i} {n}" for i, n in h["instances"].items()) or "-"
                L.append(f"| {h['depth']} | {h['caller']} > {h['callee']} | {h['calls']} | "
                         f"{h['failed']} | {ms(h['p50_ms'])} | {ms(h['p99_ms'])} | "
                         f"{ms(h['network_p99_ms'])} | {inst} |")
            L.append("")
    return L


def _fidelity_cell(s: dict) -> str:
    counts = s.get("fidelity") or {}
    cell = ", ".join(f"{n} {lvl}" for lvl, n in counts.items()) or "-"
    if s.get("invalid_runs"):
        cell += f" (left out of the figures: {s['invalid_runs']} of {s['runs']})"
    return cell


def fidelity_lines(runs: list[dict], summary: dict, topos, modes) -> list[str]:
    """The report's fidelity section: every run's verdict and its reasons."""
    L = ["## Fidelity", "",
         "Did the emulation keep up? Each run's verdict from its monitors (host CPU, frames "
         "lost before the P4 program, the load generator's, pods' and agents' lateness; "
         "thresholds in docs/experiments.md, \"Fidelity\"). Figures below leave out "
         "`invalid` runs.", ""]
    for r in runs:
        f = r.get("figures", {}).get("fidelity")
        name = f"{r['topology']} {r['mode']} {Path(r.get('dir', '')).name}".strip()
        if f is None:
            L.append(f"- {name}: no figures (the run did not start)")
            continue
        L.append(f"- {name}: **fidelity={f['level']}**: {_reason(f)}")
    L.append("")
    return L


def _reason(f: dict) -> str:
    from dmsc.fidelity import Verdict
    v = Verdict.from_dict(f)
    m = f.get("measured", {})
    shown = {k: v for k, v in m.items() if v is not None}
    return v.reason + (" (" + ", ".join(f"{k} {v:g}" for k, v in shown.items()) + ")"
                       if shown else "")


def typical_run(runs: list[dict]) -> dict | None:
    """Of the runs of one topology and mode that have figures, the one whose
    share of calls answered is the median (the lower middle of an even count;
    the first run when there are no calls), of the runs not ``invalid`` if
    there are any: the run the time plots show."""
    rs = [r for r in runs if "figures" in r]
    valid = [r for r in rs if r["figures"].get("fidelity", {}).get("level") != "invalid"]
    rs = valid or rs                    # an invalid run is shown only when every run is
    if not rs:
        return None
    key = [(r["figures"]["calls"]["success_pct"] or 0.0, i) for i, r in enumerate(rs)]
    key.sort()
    return rs[key[(len(key) - 1) // 2][1]]


def _which(dirs: dict) -> str:
    return ", ".join(f"{m} {Path(d).name.replace('-', ' ')}" for m, d in dirs.items())


def _slug(spec: str) -> str:
    """A topology spec as a file-name part: fig2 for ../topologies/fig2.yaml, ring-16."""
    return Path(spec).stem if spec.endswith((".yaml", ".yml")) else spec.replace(":", "-")


def _short(result) -> str:
    if not isinstance(result, dict):
        return ""
    keep = {k: v for k, v in result.items()
            if k in ("answer", "reason", "refused", "fibs_changed", "state", "flow", "calls",
                     "from", "ok", "error", "sent", "answered", "src_not_held")}
    return ", ".join(f"{k}={v}" for k, v in keep.items())
