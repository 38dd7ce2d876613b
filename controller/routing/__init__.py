"""The routing protocol (DMSC type-2 signaling), pure state machines, no I/O.

router  -- one router: adjacencies, LSAs, reliable flooding, summaries, SPF scheduling
lsdb    -- the link-state database and its acceptance rules
spf     -- SPF over the LSDB with networkx: ECMP and anycast in one rule
route   -- Route: what a FIB entry means (next hops, punt or drop)

Frames in, frames out, time passed in: the unit tests run whole networks of
routers in one process (tests/support/routing_sim.py).
"""
