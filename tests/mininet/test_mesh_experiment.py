"""``dmsc experiment`` in the mesh mode end to end (docs/mesh.md): a 20 s
experiment on Figure 2 with the open loop over HTTP through pod3's sidecar, a
replica slowed (its calls move to the other one), a replica killed (its calls
move, few lost), a new instance announced (callable through the mesh control
plane's push), with the report's figures and the fidelity monitors the mesh
mode has."""
from __future__ import annotations

import json
import subprocess

import pytest

from dmsc.experiment import runner, spec
from tests.conftest import ROOT

pytestmark = [pytest.mark.mininet,
              pytest.mark.skipif(subprocess.run(["which", "haproxy"], capture_output=True)
                                 .returncode != 0, reason="needs haproxy (make setup)")]

EXPERIMENT = """\
name: mesh-short
topology: ../topologies/fig2.yaml
mode: mesh
duration: 20s
network: {mesh_timeout_ms: 100}
steps:
  - {at: 0s, do: traffic, pod: pod3, dst: /B, rate: 40/s, duration: 20s, timeout: 1s}
  - {at: 0s, do: authorize, pod: pod1, prefix: /B/7}
  - {at: 4s, do: degrade, pod: pod1, service_ms: 200}
  - {at: 9s, do: degrade, pod: pod1, service_ms: 0}
  - {at: 12s, do: kill_pod, pod: pod4}
  - {at: 15s, do: traffic, pod: pod3, dst: /B/7, rate: 10/s, duration: 5s, timeout: 1s}
  - {at: 15s, do: announce, pod: pod1, prefix: /B/7, wait_s: 3}
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    exp = spec.loads(EXPERIMENT, source="mesh-short.yaml", base=ROOT / "experiments")
    out = runner.run_experiment(exp, tmp_path_factory.mktemp("results"))
    return out, out / "runs" / "fig2" / "mesh" / "run-1"


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def window(calls, flow, t0, t1):
    return [c for c in calls if c["flow"] == flow and t0 <= c["t"] < t1]


def test_the_run_and_every_step_worked(results):
    out, rd = results
    runs = json.loads((out / "runs.json").read_text())
    assert [(r["mode"], r["errors"]) for r in runs] == [("mesh", [])]
    events = lines(rd / "events.jsonl")
    assert [e.get("error") for e in events] == [None] * 7, events
    ann = next(e for e in events if e["do"] == "announce")
    assert ann["result"]["state"] == "accepted", ann


def test_every_scheduled_call_is_recorded_and_the_report_counts_them(results):
    out, rd = results
    calls = lines(rd / "calls.jsonl")
    b = [c for c in calls if c["flow"] == "flow1"]
    assert len(b) == 800                      # 40/s for 20 s: every scheduled call
    summary = next(iter(json.loads((out / "summary.json").read_text()).values()))
    assert summary["scheduled"][0] == len(calls) == 850
    ok = sum(c["status"] == "ok" for c in calls)
    assert summary["success_pct"][0] == round(100 * ok / len(calls), 2)
    # the open loop's records: latency from the intended send time
    assert all(c["latency_ms"] >= c["service_ms"] for c in calls if c["status"] == "ok")
    assert "| calls scheduled | 850 |" in (out / "report.md").read_text()


def test_both_replicas_answer_then_the_calls_move_off_the_slowed_one(results):
    _out, rd = results
    calls = lines(rd / "calls.jsonl")
    before = window(calls, "flow1", 0.5, 4)
    assert {c["responder"] for c in before if c["status"] == "ok"} == {"/B/1", "/B/4"}
    slowed = window(calls, "flow1", 6, 9)       # 2 s after the degradation: ejected
    assert sum(c["status"] == "ok" for c in slowed) == len(slowed) == 120
    assert sum(c["responder"] == "/B/1" for c in slowed) <= 2, \
        [c["responder"] for c in slowed]


def test_a_killed_replica_loses_few_calls_and_its_calls_move(results):
    _out, rd = results
    calls = lines(rd / "calls.jsonl")
    after = window(calls, "flow1", 14, 20)
    assert {c["responder"] for c in after if c["status"] == "ok"} <= {"/B/1", "/B/7"}
    assert all(c["status"] == "ok" for c in after)
    lost = [c for c in window(calls, "flow1", 12, 14) if c["status"] != "ok"]
    assert len(lost) <= 4, lost                 # retries go to /B/1: few if any lost


def test_the_new_instance_is_callable_once_announced(results):
    _out, rd = results
    calls = [c for c in lines(rd / "calls.jsonl") if c["flow"] == "flow2"]
    assert len(calls) == 50
    ok = [c for c in calls if c["status"] == "ok"]
    assert ok and {c["responder"] for c in ok} == {"/B/7"}
    first = min(c["t"] for c in ok)
    assert first < 17.0                          # within 2 s of the announcement
    assert all(c["status"] == "ok" for c in calls if c["t"] > first + 0.5)


def test_the_fidelity_monitors_of_the_mesh_mode_ran(results):
    out, rd = results
    run = json.loads((rd / "run.json").read_text())
    m = run["fidelity"]["measured"]
    assert m["loadgen_calls"] == 850 and m["pod_overrun_events"] > 800
    assert m["host_samples"] > 10
    kinds = {r.split(",")[1] for r in (rd / "resources.csv").read_text().splitlines()[1:]}
    assert {"mesh-control", "http-pod", "sidecar", "haproxy", "bmv2", "spa"} <= kinds
    assert "fidelity" in (out / "report.md").read_text()
