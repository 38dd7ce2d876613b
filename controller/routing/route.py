"""What a FIB entry means, independent of the P4 program: a Route is a set of
equal-cost next hops (:class:`topologies.topo.NextHop`: port + destination
MAC), or punt-to-agent, or drop. A next hop on the CPU port means "this
switch's agent": an SG's own name (``/dmsc/sw/<sg>``) is routed to it that
way, and ``Route.via`` turns it into a punt."""
from __future__ import annotations

from dataclasses import dataclass

from topologies.topo import CPU_PORT, NextHop

PUNT = "punt"
DROP = "drop"


@dataclass(frozen=True)
class Route:
    """``hops`` for forwarding, or ``special`` = PUNT / DROP."""
    hops: frozenset[NextHop] = frozenset()
    special: str | None = None

    @classmethod
    def via(cls, hops) -> "Route":
        hops = frozenset(hops)
        if any(h.port == CPU_PORT for h in hops):
            return cls(special=PUNT)
        return cls(hops)
