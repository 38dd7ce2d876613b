"""The fidelity verdict on recorded monitor series, and the monitors' readers.

host-quiet.csv and host-saturated.csv were recorded on the 2-core test machine
by dmsc.fidelity.HostMonitor (0.5 s samples, 10 s): idle, and with two CPU
hogs pinned on each core.
"""
import json

import pytest

from dmsc import fidelity
from dmsc.experiment import report
from tests.conftest import ROOT
from traffic.rmi_client import load
from traffic.wire.lateness import BOUNDS_MS, KEYS, Histogram

DATA = ROOT / "tests" / "unit" / "data" / "fidelity"


def recorded(name):
    return fidelity.read_host_csv(report._csv(DATA / name))


def test_a_recorded_saturated_host_is_invalid_and_names_the_host():
    v = fidelity.verdict(host=recorded("host-saturated.csv"))
    assert v.level == "invalid"
    assert v.monitors == ["host_cpu"]
    assert "waited for a CPU" in v.reason
    assert v.kv().startswith("fidelity=invalid fidelity_reason=host_cpu:")


def test_a_recorded_quiet_host_is_ok():
    v = fidelity.verdict(host=recorded("host-quiet.csv"))
    assert (v.level, v.findings) == ("ok", [])
    assert v.kv() == "fidelity=ok"


def test_a_short_stall_degrades_a_quiet_run_without_invalidating_it():
    quiet = recorded("host-quiet.csv")
    sat = recorded("host-saturated.csv")
    mixed = quiet[:16] + sat[:4]                 # 4 of 20 samples saturated: 20 %
    v = fidelity.verdict(host=mixed)
    assert v.level == "degraded" and v.monitors == ["host_cpu"]


def test_each_monitor_trips_on_its_own():
    late = fidelity.verdict(loadgen_late_ms=[0.2] * 90 + [80.0] * 10)
    assert (late.level, late.monitors) == ("invalid", ["loadgen_late"])
    lost = fidelity.verdict(lost=(40, 10_000))           # 0.4 %
    assert (lost.level, lost.monitors) == ("degraded", ["lost_before_p4"])
    few = fidelity.verdict(lost=(3, 100))                # under the minimum count
    assert few.level == "ok"
    pods = Histogram()
    for _ in range(100):
        pods.add(0.0004)
    assert fidelity.verdict(pod_overrun=pods).level == "ok"
    for _ in range(5):
        pods.add(0.3)                                    # 5 of 105 answers 300 ms late
    v = fidelity.verdict(pod_overrun=pods)
    assert (v.level, v.monitors) == ("invalid", ["pod_overrun"])
    ticks = Histogram([0] * len(KEYS))
    for _ in range(50):
        ticks.add(0.030)
    assert fidelity.verdict(tick_late=ticks).monitors == ["tick_late"]


def test_the_worst_monitor_sets_the_level_and_every_one_is_reported():
    v = fidelity.verdict(host=recorded("host-quiet.csv"), lost=(40, 10_000),
                         loadgen_late_ms=[100.0] * 30)
    assert v.level == "invalid" and v.monitors == ["loadgen_late"]
    assert {f.monitor for f in v.findings} == {"loadgen_late", "lost_before_p4"}
    assert v.reason.index("loadgen_late") < v.reason.index("lost_before_p4")


def test_nothing_recorded_is_unknown():
    assert fidelity.verdict().level == "unknown"


def test_histogram_buckets_and_quantiles():
    h = Histogram()
    for late_s in (0.0, 0.0005, 0.001, 0.0011, 0.004, 2.0):
        h.add(late_s)
    assert dict(zip(KEYS, h.counts)) == {**{k: 0 for k in KEYS}, "le_1ms": 3, "le_2ms": 1,
                                         "le_5ms": 1, f"gt_{BOUNDS_MS[-1]}ms": 1}
    assert h.quantile_ms(0.5) == 1.0
    assert h.quantile_ms(1.0) == float("inf")
    assert Histogram.from_dict(h.to_dict("tick_late_"), "tick_late_").counts == h.counts
    assert h.since(Histogram()).counts == h.counts
    assert h.share_over(2) == pytest.approx(2 / 6)


def test_read_host_from_proc_files(tmp_path):
    def write(cpu0, cpu1, running, some):
        (tmp_path / "stat").write_text(
            f"cpu  1 1 1 1 1 1 1 1 0 0\ncpu0 {cpu0}\ncpu1 {cpu1}\nintr 5\n")
        (tmp_path / "loadavg").write_text(f"1.0 1.0 1.0 {running}/200 999\n")
        (tmp_path / "pressure").mkdir(exist_ok=True)
        (tmp_path / "pressure" / "cpu").write_text(
            f"some avg10=0 avg60=0 avg300=0 total={some}\nfull avg10=0 avg60=0 avg300=0 total=0\n")
    clock = iter([10.0, 11.0])
    write("100 0 0 900 0 0 0 0", "0 0 0 1000 0 0 0 0", 1, 0)
    a = fidelity.read_host(tmp_path, clock=lambda: next(clock))
    # cpu0 busy 100 of 100 jiffies, cpu1 50 of 100 (of which iowait counts idle)
    write("200 0 0 900 0 0 0 0", "30 0 20 1040 10 0 0 0", 5, 250_000)
    b = fidelity.read_host(tmp_path, clock=lambda: next(clock))
    row = fidelity.host_row(a, b)
    assert row["busy_pct"] == [100.0, 50.0]
    assert row["run_queue"] == 5
    assert row["cpu_pressure_pct"] == 25.0       # 250 ms of 1 s waiting


def test_lost_per_port_and_histograms_from_a_runs_files(tmp_path):
    (tmp_path / "ports.csv").write_text(
        "t,switch,port,kernel_rx,p4_in\n"
        "0.5,sg1,1,100,100\n0.5,sg1,2,50,50\n"
        "1.0,sg1,1,300,250\n1.0,sg1,2,80,80\n"
        "1.5,sg1,1,10,5\n")                      # sg1 restarted: port 1 counts from there
    per = fidelity.lost_per_port(report._csv(tmp_path / "ports.csv"))
    assert per == {("sg1", 1): (0, 0), ("sg1", 2): (0, 30)}
    (tmp_path / "ports.csv").write_text(
        "t,switch,port,kernel_rx,p4_in\n0.5,sg1,1,100,100\n1.0,sg1,1,2100,1900\n")
    h0, h1 = Histogram(), Histogram()
    for _ in range(30):
        h1.add(0.150)
    keys = ",".join(KEYS)
    (tmp_path / "pods.csv").write_text(
        f"t,name,{keys},max_ms\n0.5,pod3,{','.join(map(str, h0.counts))},0\n"
        f"1.0,pod3,{','.join(map(str, h1.counts))},150\n")
    v = fidelity.run_verdict(tmp_path)
    assert v.measured["lost_before_p4"] == 200 and v.measured["port_rx"] == 2000
    assert v.level == "invalid"
    assert set(v.monitors) == {"lost_before_p4", "pod_overrun"}


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_load_generator_records_its_own_lateness():
    """The loop sleeps to its schedule; a sleep that overslept makes the next
    call late by the overshoot; a call slower than the interval is not the
    generator's lateness (no sleep: null)."""
    clock = FakeClock()
    durations = iter([0.001, 0.001, 0.5, 0.001, 0.001])

    class Client:
        def call(self, *a, **kw):
            clock.t += next(durations)

            class R:
                rtt_s, responder = 0.001, "/B/4"
            return R()
    oversleep = iter([0.0, 0.030, 0.0, 0.0, 0.0])

    def sleep(d):
        clock.t += d + next(oversleep)
    recs = []
    out = load(Client(), "/B/4", "echo", {}, count=5, interval=0.1, timeout=1, clock=clock,
               sleep=sleep, record=recs.append)
    # call 3 took 0.5 s: calls 4 and 5 are sent at once, catching up (no sleep, null)
    assert [r["late_ms"] for r in recs] == [None, 0.0, 30.0, None, None]
    assert out["late_max_ms"] == 30.0


def test_tree_cpu_counts_a_process_and_its_descendants_only(tmp_path):
    def proc(pid, ppid, ut, st, cut=0, cst=0, comm="x (y)"):
        d = tmp_path / str(pid)
        d.mkdir()
        rest = [0] * 40
        rest[0], rest[1] = "S", ppid             # fields after "(comm)": state ppid ...
        rest[11:15] = [ut, st, cut, cst]
        (d / "stat").write_text(f"{pid} ({comm}) " + " ".join(map(str, rest)) + "\n")
    proc(10, 1, 100, 50, cut=30)                 # the benchmark (a child that ended: cutime)
    proc(11, 10, 200, 0)                         # BMv2, its child
    proc(12, 11, 5, 5)                           # a grandchild
    proc(20, 1, 999, 999)                        # someone else's
    (tmp_path / "self").mkdir()
    assert fidelity.tree_cpu_s(10, tmp_path) == pytest.approx((180 + 200 + 10) / 100)


def test_a_benchmark_is_judged_on_the_cpu_others_used():
    """Its own load may saturate the machine (that is the measurement); other
    work beside it is what makes the figure untrue."""
    own_load = [{"t": i / 2, "busy_pct": [100.0, 100.0], "run_queue": 4,
                 "cpu_pressure_pct": 80.0, "foreign_pct": 2.0} for i in range(20)]
    assert fidelity.verdict(host=own_load).level == "ok"
    beside = [dict(r, foreign_pct=50.0) for r in own_load]
    v = fidelity.verdict(host=beside)
    assert (v.level, v.monitors) == ("invalid", ["host_foreign"])
    assert v.kv() == "fidelity=invalid fidelity_reason=host_foreign:50"


def _run(i, pct, level):
    return {"topology": "fig2", "mode": "distributed", "switches": 7, "dir": f"runs/run-{i}",
            "figures": {"calls": {"success_pct": pct, "sent": 100, "responders": {},
                                  "p50_ms": 1.0, "p99_ms": 2.0, "longest_outage_ms": 0.0},
                        "events": [], "cold_start_s": 5.0, "control_frames_per_s": 10.0,
                        "resources": {}, "lost_before_p4": 0, "errors": [],
                        "fidelity": {"level": level, "reason": "", "monitors": [],
                                     "findings": [], "measured": {}}}}


def test_repeat_medians_leave_out_invalid_runs_and_say_how_many():
    runs = [_run(1, 99.0, "ok"), _run(2, 40.0, "invalid"), _run(3, 97.0, "degraded")]
    (s,) = report.summarize(runs).values()
    assert s["success_pct"] == (98.0, 97.0, 99.0)          # run 2 left out
    assert (s["runs"], s["ok_runs"], s["invalid_runs"]) == (3, 2, 1)
    assert s["fidelity"] == {"ok": 1, "degraded": 1, "invalid": 1}
    assert report._fidelity_cell(s) == "1 ok, 1 degraded, 1 invalid (left out of the figures: 1 of 3)"
    assert report.typical_run(runs)["dir"] != "runs/run-2"
