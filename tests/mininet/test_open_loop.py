"""The open-loop load generator across Figure 2 (pod1 -> /B/4, three switches
each way): every scheduled call is accounted for, and a server that stops
answering for a second shows in the latencies of the calls scheduled during
the stall, which the generator kept sending on time."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from topologies.emu.child_processes import REPO_ROOT, die_with_parent, py_env

pytestmark = pytest.mark.mininet


def start_load(net, records, *, rate, duration, timeout):
    t = net.topo
    cmd = [sys.executable, "-m", "traffic.loadgen", "--iface", t.intf_name("pod1", 0),
           "--src", "/A/1", "--mac", t.mac("pod1", 0), "--rate", str(rate),
           "--duration", str(duration), "--timeout", str(timeout),
           "--records", str(records), "/B/4", "echo"]
    return net.host("pod1").popen(die_with_parent(cmd), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=str(REPO_ROOT), env=py_env())


def finish(proc, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-600:]
    return json.loads(out.decode().strip().splitlines()[-1])


def read(records):
    return sorted((json.loads(x) for x in records.read_text().splitlines()),
                  key=lambda c: c["t"])


def test_every_scheduled_call_is_accounted_for(net, tmp_path):
    records = tmp_path / "calls.jsonl"
    s = finish(start_load(net, records, rate=100, duration=4, timeout=1.0), timeout=30)
    calls = read(records)
    assert s["loop"] == "open" and s["scheduled"] == len(calls) == 400
    assert s["ok"] == 400 and s["not_sent"] == 0, s
    ts = [c["t"] for c in calls]
    assert all(abs((b - a) - 0.01) < 1e-6 for a, b in zip(ts, ts[1:]))     # the schedule
    assert {c["responder"] for c in calls} == {"/B/4"}
    assert all(c["latency_ms"] >= c["service_ms"] > 0 for c in calls)
    lat = sorted(c["latency_ms"] for c in calls)
    assert s["p50_ms"] == pytest.approx(lat[199], rel=0.01, abs=0.05)      # HDR: 3 digits


def test_a_stalled_server_shows_in_the_calls_scheduled_during_the_stall(net, tmp_path):
    records = tmp_path / "calls.jsonl"
    pod4 = net.pods["pod4"].proc.pid
    # 20/s: the ~20 requests held during the stall are answered in one burst
    # after it (at 100/s, the burst of 100 answers lost 65 of them on the way)
    proc = start_load(net, records, rate=20, duration=4, timeout=3.0)
    deadline = time.monotonic() + 15
    while (not records.exists() or len(records.read_text().splitlines()) < 10) \
            and time.monotonic() < deadline:
        time.sleep(0.02)           # poll: the first 10 calls are answered
    assert time.monotonic() < deadline, "the load did not start"
    try:
        t_stop = time.monotonic()
        os.kill(pod4, signal.SIGSTOP)          # /B/4 stops answering; frames queue
        time.sleep(1.0)                        # the stall itself
    finally:
        t_cont = time.monotonic()
        os.kill(pod4, signal.SIGCONT)
    s = finish(proc, timeout=30)
    calls = read(records)
    assert s["scheduled"] == len(calls) == 80 and s["ok"] == 80, s
    during = [c for c in calls if t_stop + 0.05 <= c["t"] <= t_cont - 0.05]
    assert len(during) >= 16
    for c in during:
        assert c["t_sent"] - c["t"] < 0.05, c      # sent on schedule though nothing answered
        wait = t_cont - c["t"]                    # what a user calling then waited, at least
        assert wait * 1000 - 5 <= c["latency_ms"] <= wait * 1000 + 250, (c, wait)
    assert s["max_ms"] >= 900 and s["p90_ms"] >= 100, s
    assert s["max_in_flight"] >= 16
