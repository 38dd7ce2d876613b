"""A small call graph end to end on Figure 2: pod1 calls /front (pod2), whose
method fans out to /mid (pod3) and /leaf (pod4), then calls /leaf again; /mid
calls /leaf. Every request is answered, and each one's trace tree, put back
together from the spans the pods wrote, is the file's call graph, with the
instance that answered each hop."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import yaml

from dmsc.converge import bring_up
from tests.conftest import ROOT
from topologies.emu.child_processes import REPO_ROOT, die_with_parent, py_env
from topologies.emu.net import DmscNet
from topologies.topo import Topology
from traffic import callgraph

pytestmark = pytest.mark.mininet

APP = """\
name: small
timeout: 1s
services:
  front:
    methods:
      get:
        service_ms: 1
        reply_bytes: 100
        calls:
          - [mid.get, {call: leaf.get, request_bytes: 300}]
          - leaf.put
  mid:
    methods:
      get: {service_ms: 2, calls: [leaf.get]}
  leaf:
    methods:
      get: {service_ms: 3, reply_bytes: 500}
      put: {service_ms: 1}
"""
INSTANCES = {"pod1": ["/client/1"], "pod2": ["/front/2"], "pod3": ["/mid/3"],
             "pod4": ["/leaf/4"]}
CALLS = 30


@pytest.fixture(scope="module")
def app_net(tmp_path_factory):
    d = tmp_path_factory.mktemp("callgraph")
    spec = yaml.safe_load((ROOT / "topologies" / "fig2.yaml").read_text())
    for pod, insts in INSTANCES.items():
        spec["nodes"][pod] = {"kind": "pod", "instances": insts}
    spec["name"] = "fig2-callgraph"
    (d / "app.yaml").write_text(APP)
    net = bring_up(DmscNet(Topology.from_dict(spec, source="<fig2-callgraph>"), d / "run",
                           app_file=d / "app.yaml"), timeout=60)
    try:
        yield net, callgraph.load(d / "app.yaml"), d
    finally:
        net.stop()


def test_every_request_is_answered_and_its_tree_is_the_call_graph(app_net):
    net, app, d = app_net
    t = net.topo
    records = d / "calls.jsonl"
    cmd = [sys.executable, "-m", "traffic.loadgen", "--iface", t.intf_name("pod1", 0),
           "--src", "/client/1", "--mac", t.mac("pod1", 0), "--rate", "15", "--duration",
           str(CALLS / 15), "--timeout", "2", "--trace-prefix", "req-", "--records",
           str(records), "/front", "get"]
    proc = net.host("pod1").popen(die_with_parent(cmd), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=str(REPO_ROOT), env=py_env())
    out, err = proc.communicate(timeout=60)
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["scheduled"] == summary["ok"] == CALLS, (summary, err.decode()[-500:])
    calls = {c["trace"]: c for c in map(json.loads, records.read_text().splitlines())}
    assert {c["responder"] for c in calls.values()} == {"/front/2"}

    files = [net.span_file(p) for p in INSTANCES]
    want = CALLS * app.span_count("front", "get")           # 5 spans a request
    deadline = time.monotonic() + 10
    while len(callgraph.read_spans(files)) < want and time.monotonic() < deadline:
        time.sleep(0.05)                                     # the pods' lines, flushed
    spans = callgraph.read_spans(files)
    assert len(spans) == want
    roots = callgraph.trees(spans)
    assert sorted(roots) == sorted(calls)                    # one tree per request
    for trace, root in roots.items():
        assert (root["service"], root["method"], root["instance"]) == ("front", "get", "/front/2")
        assert root["caller"] == "/client/1" and root["parent"] is None
        assert callgraph.check_tree(root, app) == [], trace
        per = callgraph.hops(root)
        assert [(h["caller"], h["callee"], h["instance"]) for h in per] == [
            ("front.get", "mid.get", "/mid/3"), ("mid.get", "leaf.get", "/leaf/4"),
            ("front.get", "leaf.get", "/leaf/4"), ("front.get", "leaf.put", "/leaf/4")]
        for h in per:
            assert h["status"] == "ok" and h["network_ms"] > 0, h
            assert h["latency_ms"] >= h["callee_ms"] >= 1.0, h   # every method works >= 1 ms
        c = calls[trace]
        # the root span lies inside the client's call (one clock: CLOCK_MONOTONIC)
        assert c["t_sent"] < root["t_in"] < root["t_out"] < c["t"] + c["latency_ms"] / 1000
        fan = root["calls"][:2]
        assert fan[0]["sent"] == fan[1]["sent"]               # the fan-out left at once
        assert root["calls"][2]["sent"] >= max(f["answered"] for f in fan)
