"""``dmsc experiment`` end to end: experiments/smoke.yaml on Figure 2 in both
modes produces every artifact, and the report's figures are what the raw
data says (recomputed here independently of the report code)."""
from __future__ import annotations

import csv
import json

import pytest

from dmsc.experiment import runner, spec
from tests.conftest import ROOT

pytestmark = pytest.mark.mininet

RUN_FILES = ("calls.jsonl", "fib.jsonl", "control.csv", "resources.csv", "events.jsonl",
             "run.json")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    exp = spec.load(ROOT / "experiments" / "smoke.yaml", modes=list(spec.BOTH))
    return exp, runner.run_experiment(exp, tmp_path_factory.mktemp("results"))


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def run_dir(out, mode):
    return out / "runs" / "fig2" / mode / "run-1"


def test_every_artifact_is_written(results):
    exp, out = results
    assert out.name.startswith("smoke-")
    for f in ("experiment.yaml", "versions.json", "runs.json", "summary.json", "report.md",
              "calls-fig2.png", "convergence-fig2.png", "control-fig2.png"):
        assert (out / f).stat().st_size > 0, f
    versions = json.loads((out / "versions.json").read_text())
    assert len(versions["git_commit"]) == 40 and versions["bmv2"]
    runs = json.loads((out / "runs.json").read_text())
    assert [(r["mode"], r["errors"]) for r in runs] == [("distributed", []), ("central", [])]
    for mode in spec.BOTH:
        rd = run_dir(out, mode)
        for f in RUN_FILES:
            assert (rd / f).stat().st_size > 0, (mode, f)


@pytest.mark.parametrize("mode", spec.BOTH)
def test_every_call_is_recorded(results, mode):
    exp, out = results
    rd = run_dir(out, mode)
    calls = lines(rd / "calls.jsonl")
    flow = json.loads((rd / "run.json").read_text())["flows"][0]
    assert len(calls) == flow["summary"]["scheduled"]
    assert len(calls) == 400             # 50/s for 8 s: every scheduled call, answered or not
    assert sum(c["status"] == "ok" for c in calls) == flow["summary"]["ok"]
    assert {c["responder"] for c in calls if c["status"] == "ok"} == {"/B/4"}
    ts = [c["t"] for c in calls]
    assert ts == sorted(ts) and 0 <= ts[0] < 1 and ts[-1] < exp.duration + 1
    assert all(c["latency_ms"] > 0 for c in calls if c["status"] == "ok")


@pytest.mark.parametrize("mode", spec.BOTH)
def test_fib_changes_control_frames_and_processes_are_recorded(results, mode):
    _exp, out = results
    rd = run_dir(out, mode)
    fib = lines(rd / "fib.jsonl")
    assert {x["switch"] for x in fib if x["t"] < 0} == {"sg1", "sg2", "sg3", "sg4", "sr1",
                                                         "sr2", "sr3"}    # the cold start
    down = next(e for e in lines(rd / "events.jsonl") if e["do"] == "link_down")
    after = [x for x in fib if down["t"] <= x["t"] < down["t"] + 2]
    assert any("/B/4" in x["names"] for x in after if x["switch"] == "sg3")   # rerouted
    with open(rd / "control.csv") as f:
        ctl = list(csv.DictReader(f))
    assert {r["switch"] for r in ctl} == {"sg1", "sg2", "sg3", "sg4", "sr1", "sr2", "sr3"}
    per = {}
    for r in ctl:
        per.setdefault(r["switch"], []).append(int(r["punted"]))
    assert all(v[-1] > v[0] for v in per.values())          # hellos or discovery all along
    with open(rd / "resources.csv") as f:
        kinds = {r["kind"] for r in csv.DictReader(f)}
    assert {"bmv2", "pod", "spa"} <= kinds
    assert ("agent" in kinds) == (mode == "distributed")
    assert ("central" in kinds) == (mode == "central")


@pytest.mark.parametrize("mode", spec.BOTH)
def test_the_hijack_is_refused_and_no_fib_changes(results, mode):
    _exp, out = results
    rd = run_dir(out, mode)
    ev = next(e for e in lines(rd / "events.jsonl") if e["do"] == "hijack")
    assert ev["result"]["refused"] and ev["result"]["reason"] == "key_not_authorized", ev
    assert ev["result"]["fibs_changed"] == []
    assert [x for x in lines(rd / "fib.jsonl") if x["t"] >= ev["t"]] == []


def test_the_reports_figures_come_from_the_raw_data(results):
    """Recomputed here from calls.jsonl, events.jsonl and fib.jsonl, without
    the report's code: the share of calls answered and the time the link
    failure took to converge, as report.md prints them."""
    _exp, out = results
    report = (out / "report.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    answered, converge = [], []
    for mode in spec.BOTH:
        rd = run_dir(out, mode)
        calls = lines(rd / "calls.jsonl")
        pct = round(100.0 * sum(c["status"] == "ok" for c in calls) / len(calls), 2)
        assert summary[f"../topologies/fig2.yaml {mode}"]["success_pct"][0] == pct
        answered.append(f"{pct:g} %")
        evs = [e for e in lines(rd / "events.jsonl") if e["do"] != "traffic"]
        down, nxt = evs[0], evs[1]
        assert down["do"] == "link_down"
        last = {}
        for x in lines(rd / "fib.jsonl"):
            if down["t"] <= x["t"] < nxt["t"]:
                last[x["switch"]] = x["t"]
        ms = round(max(last.values()) - down["t"], 4) * 1000
        got = summary[f"../topologies/fig2.yaml {mode}"]["events"][0]["max_ms"][0]
        assert got == pytest.approx(ms, abs=0.15)
        converge.append(f"{got:g} ms")
    assert f"| calls answered | {answered[0]} | {answered[1]} |" in report
    assert f"| link_down sg4 sr3 | {converge[0]} | {converge[1]} |" in report
