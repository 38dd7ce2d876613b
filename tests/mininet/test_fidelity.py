"""Fidelity end to end: experiments/smoke.yaml (distributed) twice on Figure 2,
once as the host is and once with a CPU hog pinned on every core beside it
(started when the network has converged, bounded by ``timeout``, stopped by
its PID). The loaded run is ``invalid`` and its verdict names the host's
monitor; the first run is ``ok`` when the host was quiet before and after it
(CPU pressure avg10 under the verdict's first bound). The machine the tests
run on is shared: when other work kept it busy, that test skips saying so
(the verdict then rightly flags the first run too: on 2026-12-06 such a run
measured 73.8 % CPU pressure and was ``invalid``)."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from dmsc import fidelity
from dmsc.experiment import runner, spec
from tests.conftest import ROOT

pytestmark = pytest.mark.mininet

HOG_S = 60          # the hogs' own bound: they end by themselves even if this test dies
# the host counts as quiet when its CPU pressure (avg10) is under the verdict's first bound
QUIET_PSI = fidelity.THRESHOLDS["cpu_pressure_pct"][0]


def psi_avg10() -> float:
    with open("/proc/pressure/cpu") as f:
        return float(f.readline().split()[1].split("=")[1])


def wait_quiet(deadline_s: float = 60.0) -> bool:
    """Wait (up to ``deadline_s``) for other work on the machine to calm down;
    True if the host is quiet."""
    end = time.monotonic() + deadline_s
    while psi_avg10() >= QUIET_PSI:
        if time.monotonic() > end:
            return False
        time.sleep(1.0)
    return True


class Hogs:
    """Two busy loops pinned on each core, started on the first progress report
    after t = 0 (the network converged), each bounded by ``timeout``."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def on_progress(self, t, total, label):
        if not self.procs and not label.startswith("bringing up"):
            for core in [c for c in range(os.cpu_count()) for _ in range(2)]:
                self.procs.append(subprocess.Popen(
                    ["taskset", "-c", str(core), "timeout", str(HOG_S), "sh", "-c",
                     "while :; do :; done"]))

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            p.wait(timeout=10)


def run(tmp, on_progress=None):
    exp = spec.load(ROOT / "experiments" / "smoke.yaml", modes=["distributed"])
    out = runner.run_experiment(exp, tmp, on_progress=on_progress)
    runs = json.loads((out / "runs.json").read_text())
    assert [r["errors"] for r in runs] == [[]]
    return out, runs[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    # the control run needs a quiet host before and after it; a host that was
    # busy (other work, or this suite's last module still ending) gets one more try
    for _attempt in range(2):
        was_quiet = wait_quiet()
        quiet = run(tmp_path_factory.mktemp("quiet"))
        was_quiet = was_quiet and psi_avg10() < QUIET_PSI   # before and after the run
        if was_quiet:
            break
    hogs = Hogs()
    try:
        loaded = run(tmp_path_factory.mktemp("loaded"), on_progress=hogs.on_progress)
    finally:
        hogs.stop()
    assert hogs.procs, "the hogs never started"
    for name, (_out, r) in (("as is", quiet), ("loaded", loaded)):
        print(f"\nfidelity {name}: {r['fidelity']['level']}: {r['fidelity']['reason']} "
              f"{r['fidelity']['measured']}")
    return quiet, loaded, was_quiet


def test_the_loaded_run_is_invalid_and_names_the_host_monitor(runs):
    (_qout, quiet), (_lout, loaded), _was_quiet = runs
    ld = loaded["fidelity"]
    assert ld["level"] == "invalid", ld
    assert "host_cpu" in ld["monitors"]
    assert "waited for a CPU" in ld["reason"]
    # every monitor was recorded and judged in both runs, none skipped
    for r in (quiet, loaded):
        for k in ("cpu_pressure_pct", "lost_before_p4", "loadgen_late_p99_ms",
                  "pod_overrun_p99_ms", "tick_late_p99_ms"):
            assert r["fidelity"]["measured"].get(k) is not None, k


def test_the_run_on_a_quiet_host_is_not_flagged(runs):
    (_qout, quiet), (_lout, loaded), was_quiet = runs
    if not was_quiet:
        pytest.skip(f"other work kept the host busy (CPU pressure avg10 >= {QUIET_PSI:g} % "
                    f"before or after the first run): its verdict was "
                    f"{quiet['fidelity']['level']}, no quiet control")
    q = quiet["fidelity"]
    assert (q["level"], q["findings"]) == ("ok", []), q
    assert loaded["fidelity"]["measured"]["cpu_pressure_pct"] > q["measured"]["cpu_pressure_pct"]


def test_the_reports_carry_the_verdicts_and_leave_the_invalid_run_out(runs):
    (qout, quiet), (lout, _loaded), _was_quiet = runs
    qrep, lrep = (qout / "report.md").read_text(), (lout / "report.md").read_text()
    level = quiet["fidelity"]["level"]
    assert f"**fidelity={level}**" in qrep and f"| fidelity | 1 {level}" in qrep
    assert "**fidelity=invalid**: host_cpu" in lrep
    assert "left out of the figures: 1 of 1" in lrep
    summary = json.loads((lout / "summary.json").read_text())
    (s,) = summary.values()
    assert s["invalid_runs"] == 1 and s["success_pct"] == [None, None, None]
