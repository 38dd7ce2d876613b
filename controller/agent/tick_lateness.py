"""How late the agent's protocol loop ran against its schedule (a fidelity monitor).

The protocol loop sleeps until its next deadline (a hello, a dead interval, a
retransmission, SPF, the carrier poll) or until a frame arrives. Each time it
wakes at or after the deadline it slept for, the delay past that deadline is
one count in the shared lateness histogram (traffic/wire/lateness.py). On an
idle host that is the sleep's own overshoot (well under 1 ms); on a host
short of CPU it is how long the agent waited to run, which is how long every
reaction of the protocol was delayed. The agent exports the buckets as state
counters ``tick_late_le_1ms`` ... (``dmsc/fidelity.py`` reads them).

A deadline already past when the loop goes to sleep (work queued up) counts
from the moment the loop went to sleep, so a backlog is not counted twice.
"""
from __future__ import annotations

from traffic.wire.lateness import Histogram

PREFIX = "tick_late_"


class TickLateness:
    def __init__(self):
        self.hist = Histogram()
        self._due: float | None = None

    def sleeping_until(self, due: float, now: float) -> None:
        """The loop goes to sleep at ``now`` until ``due`` (or a frame)."""
        self._due = max(due, now)

    def woke(self, now: float) -> None:
        """The loop runs again: a count if the deadline it slept for has come."""
        if self._due is not None and now >= self._due:
            self.hist.add(now - self._due)
            self._due = None

    def counters(self) -> dict[str, int]:
        return self.hist.to_dict(PREFIX)
