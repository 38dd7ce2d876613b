"""The lateness histogram every process of the testbed reports in the same format.

A process that runs on a schedule (an agent's protocol ticks, a pod's answers
after their service time) counts how late each scheduled thing ran: one count
per event, in fixed buckets of milliseconds. The buckets and their names are a
format shared across processes (an agent exports them as state counters, a pod
in its timing file) and read by the tools (dmsc/fidelity.py), so they are
defined once, here, beside the other shared definitions.

Bucket ``le_5ms`` counts events late by more than the previous bound (2 ms)
and at most 5 ms; ``gt_1000ms`` the rest. Counts only grow: a reader subtracts
two snapshots for a window.
"""
from __future__ import annotations

import bisect

BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
KEYS = tuple(f"le_{b}ms" for b in BOUNDS_MS) + (f"gt_{BOUNDS_MS[-1]}ms",)


class Histogram:
    """Counts of lateness per bucket; ``add`` is O(log buckets), no allocation."""

    __slots__ = ("counts", "max_ms")

    def __init__(self, counts=None, max_ms: float = 0.0):
        self.counts = list(counts) if counts is not None else [0] * len(KEYS)
        if len(self.counts) != len(KEYS):
            raise ValueError(f"{len(self.counts)} buckets, expected {len(KEYS)}")
        self.max_ms = max_ms

    def add(self, late_s: float) -> None:
        ms = max(0.0, late_s * 1000.0)
        self.counts[bisect.bisect_left(BOUNDS_MS, ms)] += 1
        if ms > self.max_ms:
            self.max_ms = ms

    @property
    def total(self) -> int:
        return sum(self.counts)

    def to_dict(self, prefix: str = "") -> dict[str, int]:
        """``{prefix + "le_1ms": n, ...}``: the exported form."""
        return {prefix + k: n for k, n in zip(KEYS, self.counts)}

    @classmethod
    def from_dict(cls, d: dict, prefix: str = "") -> "Histogram":
        """The inverse of :meth:`to_dict` (missing buckets count 0)."""
        return cls([int(d.get(prefix + k, 0)) for k in KEYS])

    def since(self, before: "Histogram") -> "Histogram":
        """The counts between two snapshots (a restarted process: from zero)."""
        diff = [a - b for a, b in zip(self.counts, before.counts)]
        if any(x < 0 for x in diff):
            return Histogram(self.counts)
        return Histogram(diff)

    def __add__(self, other: "Histogram") -> "Histogram":
        return Histogram([a + b for a, b in zip(self.counts, other.counts)],
                         max(self.max_ms, other.max_ms))

    def quantile_ms(self, q: float) -> float | None:
        """The upper bound of the bucket holding the q-quantile (an upper
        bound of the true quantile; ``inf`` past the last bound), None if empty."""
        n = self.total
        if not n:
            return None
        rank = q * n
        acc = 0
        for i, c in enumerate(self.counts):
            acc += c
            if acc >= rank and c:
                return float(BOUNDS_MS[i]) if i < len(BOUNDS_MS) else float("inf")
        return float("inf")

    def share_over(self, ms: float) -> float:
        """The share of events later than ``ms`` (a bucket bound)."""
        n = self.total
        if not n:
            return 0.0
        i = bisect.bisect_left(BOUNDS_MS, ms)
        return sum(self.counts[i + 1:]) / n if ms in BOUNDS_MS else \
            sum(self.counts[i:]) / n
