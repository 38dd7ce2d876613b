"""The convergence helper, against a scripted reader (no switch)."""
from __future__ import annotations

import pytest

from dmsc.converge import NotConverged, wait_converged

RIGHT, WRONG = {(1, 32): "via port 1"}, {(1, 32): "via port 2"}


class ScriptedReader:
    """Each switch answers from its script, one answer per read, the last
    repeated; every read takes one second of a fake clock."""

    def __init__(self, scripts: dict[str, list]):
        self.scripts = {n: list(s) for n, s in scripts.items()}
        self.reads: list[str] = []
        self.now = 0.0

    def clock(self):
        return self.now

    def read(self, name):
        self.reads.append(name)
        self.now += 1.0
        s = self.scripts[name]
        return s.pop(0) if len(s) > 1 else s[0]


def test_returns_once_every_switch_is_right_and_stays_right():
    r = ScriptedReader({"a": [WRONG, RIGHT], "b": [WRONG, WRONG, RIGHT]})
    took = wait_converged(r, {"a": RIGHT, "b": RIGHT}, timeout=50, poll=0, clock=r.clock)
    # b was first seen right by the fifth read: the confirming pass (reads 6
    # and 7) does not count, and neither does the time before b was right
    assert took == 5.0
    # a right switch is not read again until the confirming pass
    assert r.reads == ["a", "b", "a", "b", "b", "a", "b"]


def test_a_switch_that_moves_before_the_confirmation_is_waited_for_again():
    r = ScriptedReader({"a": [RIGHT, WRONG, WRONG, RIGHT], "b": [WRONG, RIGHT]})
    wait_converged(r, {"a": RIGHT, "b": RIGHT}, timeout=5, poll=0)
    assert r.reads.count("a") == 5           # right, moved at confirmation, wrong, right, confirm


def test_the_message_shows_the_read_that_failed_not_an_older_one():
    """A switch right at first and wrong at the confirmation is reported
    with its wrong read (it once printed "missing [] extra [] wrong []")."""
    r = ScriptedReader({"a": [RIGHT, WRONG]})
    with pytest.raises(NotConverged, match=r"a: missing \[\] extra \[\] wrong \[.+\]"):
        wait_converged(r, {"a": RIGHT}, timeout=3, poll=0, clock=r.clock)


def test_never_right_is_not_converged_and_names_the_switch():
    r = ScriptedReader({"a": [RIGHT], "b": [WRONG]})
    with pytest.raises(NotConverged, match=r"after 0.05s: b: .*wrong"):
        wait_converged(r, {"a": RIGHT, "b": RIGHT}, timeout=0.05, poll=0.01)
