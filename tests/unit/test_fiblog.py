"""The FIB change log (controller/switch/fiblog.py)."""
from __future__ import annotations

import json

from controller.routing.route import Route
from controller.switch import fiblog
from topologies.topo import NextHop
from traffic.wire import names

A, B, C = (names.prefix_key(p) for p in ("/A", "/B/4", "/C"))
VIA2 = Route.via([NextHop(2, "02:00:00:00:00:02")])
VIA3 = Route.via([NextHop(3, "02:00:00:00:00:03")])


def test_each_write_that_changes_something_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "fib.jsonl"
    monkeypatch.setenv(fiblog.ENV, str(path))
    t = iter([5.0, 6.0])
    assert fiblog.log("sg1", {}, {A: VIA2, B: VIA2}, clock=lambda: next(t))["added"] == 2
    assert fiblog.log("sg1", {A: VIA2, B: VIA2}, {A: VIA2, B: VIA2}) is None   # nothing changed
    fiblog.log("sg1", {A: VIA2, B: VIA2}, {A: VIA3, C: VIA2}, clock=lambda: next(t))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines == fiblog.read(path)
    assert [(x["t"], x["added"], x["modified"], x["deleted"]) for x in lines] == \
        [(5.0, 2, 0, 0), (6.0, 1, 1, 1)]
    assert set(lines[1]["prefixes"]) == {names.format_key(*k) for k in (A, B, C)}


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(fiblog.ENV, raising=False)
    assert fiblog.log("sg1", {}, {A: VIA2}) is None
    assert list(tmp_path.iterdir()) == []


def test_a_torn_last_line_is_skipped_when_read(tmp_path):
    path = tmp_path / "fib.jsonl"
    fiblog.log("sr1", {}, {A: VIA2}, path=str(path))
    with open(path, "a") as f:
        f.write('{"t": 7.0, "swi')
    assert [x["switch"] for x in fiblog.read(path)] == ["sr1"]
