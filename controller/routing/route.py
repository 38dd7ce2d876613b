"""What a FIB entry means, independent of the P4 program: a Route is a set of
equal-cost next hops (:class:`topologies.topo.NextHop`: port + destination
MAC), or punt-to-agent, or drop."""
from __future__ import annotations

from dataclasses import dataclass

from topologies.topo import NextHop

PUNT = "punt"
DROP = "drop"


@dataclass(frozen=True)
class Route:
    """``hops`` for forwarding, or ``special`` = PUNT / DROP."""
    hops: frozenset[NextHop] = frozenset()
    special: str | None = None

    @classmethod
    def via(cls, hops) -> "Route":
        return cls(frozenset(hops))
