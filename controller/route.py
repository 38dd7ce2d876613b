"""What a FIB entry means, independent of the P4 program: a Route is a set of
equal-cost next hops (port + destination MAC), or punt-to-agent, or drop."""
from __future__ import annotations

from dataclasses import dataclass

PUNT = "punt"
DROP = "drop"


@dataclass(frozen=True, order=True)
class Hop:
    port: int
    mac: str


@dataclass(frozen=True)
class Route:
    """``hops`` for forwarding, or ``special`` = PUNT / DROP."""
    hops: frozenset = frozenset()
    special: str | None = None

    @classmethod
    def via(cls, hops) -> "Route":
        return cls(frozenset(Hop(h.port, h.mac) for h in hops))
