"""Answers to requests a switch has no route for: an ERROR (no_route) routed
back to the request's source, instead of silence.

Only requests and probes are answered (never an error: no error storms), at
most ``NO_ROUTE_PER_S`` a second per switch (:class:`TokenBucket`). An agent
and the central controller (for each switch it programs) both answer this way.
"""
from __future__ import annotations

import time

from traffic.wire import codec, defs, names

NO_ROUTE_PER_S = 50.0


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; take() spends one."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.t = burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class NoRouteReplies:
    """The no-route answers of one switch, counted in ``counters``
    (``no_route_answered``, ``_rate_limited``, ``_not_answered``, ``_malformed``)."""

    def __init__(self, switch: str, counters):
        self.switch = switch
        self.counters = counters
        self.limit = TokenBucket(NO_ROUTE_PER_S, burst=NO_ROUTE_PER_S)

    def answer(self, raw: bytes) -> bytes | None:
        """The ERROR frame to send back for the punted frame ``raw`` (to be
        sent routed, ``PKTOUT_ROUTE``), or None when it gets no answer."""
        try:
            pkt = codec.decode(raw)
        except ValueError:
            self.counters["no_route_malformed"] += 1
            return None
        if pkt.type not in (defs.TYPE_REQUEST, defs.TYPE_PROBE) or not pkt.src_name:
            self.counters["no_route_not_answered"] += 1
            return None
        if not self.limit.take():
            self.counters["no_route_rate_limited"] += 1
            return None
        try:
            frame = codec.error(pkt, names.switch_name(self.switch), codec.STATUS_NO_ROUTE,
                                f"no route to {pkt.dst_name} at {self.switch}")
        except names.InvalidName:
            self.counters["no_route_not_answered"] += 1
            return None
        self.counters["no_route_answered"] += 1
        return frame
