"""The SCSC's policies on one switch: checked, resolved, written into the P4
policy stage (ahead of the FIB), and removed when they expire.

A policy set from the SCSC replaces the switch's whole set. It is refused,
counted (``policy_refused_<why>``) and logged when its HMAC does not verify
with the policy key (``bad_auth``: an unknown or forged sender, or a message
signed for another purpose: controller/keys.py), when it is for another switch,
older than the last one taken (``stale_version``), implausibly far ahead of this
switch's clock (``version_ahead``: one such set would lock the SCSC out), sent
more than ``STALE_S`` ago (``stale``), or names what this switch cannot
resolve (``unknown_next``: a neighbour that is not up, an instance this SG does
not hold). An entry "requests to service S from requester prefix P go to
neighbour N" becomes a ternary entry (dst key exact, src key to P's depth)
with the port and MAC of N; "local:<instance>" at the last SG, the pod's.

Policies live ``lifetime_s`` unless pushed again: when the SCSC falls silent
they expire and the FIB (SPF) carries the traffic again.
"""
from __future__ import annotations

import logging
import math
import time

from controller.proto import routing_pb2 as rpb
from controller.proto import scsc_pb2 as spb
from controller import keys
from controller.keys import verify
from controller.policy_channel import LOCAL
from controller.switch import p4names as N
from controller.switch.p4rt import DELETE, INSERT, MODIFY
from controller.switch.tables import policy_entry, policy_stage
from traffic.wire import names

log = logging.getLogger("dmsc.policies")

STALE_S = 5.0
MAX_LIFETIME_S = 60.0
FULL = (1 << names.KEY_BITS) - 1


def src_match(prefix: str) -> tuple[int, int]:
    key, plen = names.prefix_key(prefix)
    return key, (FULL >> (names.KEY_BITS - plen)) << (names.KEY_BITS - plen) if plen else 0


class Refused(ValueError):
    def __init__(self, why: str, text: str):
        self.why = why
        super().__init__(text)


class Policies:
    def __init__(self, agent, key: bytes, clock=time.time, mono=time.monotonic):
        self.agent, self.key = agent, key
        self.clock, self.mono = clock, mono
        # (dst key, src key, src mask) -> (port, mac, dst, src, instance)
        self.installed: dict[tuple, tuple] = {}
        self.expires_at = math.inf
        self.version = -1
        self.scsc = ""
        self.changed_at = 0.0
        self.counters = agent.counters

    # -- from the SCSC (a gRPC thread) --------------------------------------------
    def set(self, ps: spb.PolicySet) -> spb.Ack:
        try:
            want = self._check(ps)
        except Refused as exc:
            self.counters[f"policy_refused_{exc.why}"] += 1
            log.warning("policy set from %r refused: %s: %s", ps.scsc, exc.why, exc)
            return spb.Ack(ok=False, error=f"{exc.why}: {exc}")
        with self.agent.fib.lock:
            self._write(want)
            self.version, self.scsc = ps.version, ps.scsc
            self.expires_at = self.mono() + ps.lifetime_s if want else math.inf
        self.counters["policy_sets"] += 1
        return spb.Ack(ok=True)

    def _check(self, ps) -> dict:
        if not verify(ps, self.key):
            raise Refused("bad_auth", "HMAC does not verify with the policy key")
        if ps.switch != self.agent.name:
            raise Refused("wrong_switch", f"for {ps.switch!r}, this is {self.agent.name}")
        if ps.version <= self.version:
            raise Refused("stale_version", f"version {ps.version} <= {self.version}")
        if keys.too_far_ahead(ps.version, self.clock()):
            raise Refused("version_ahead", f"version {ps.version} is more than "
                          f"{keys.AHEAD_S:g} s of milliseconds ahead of this clock")
        if not math.isfinite(ps.sent_at) or abs(self.clock() - ps.sent_at) > STALE_S:
            raise Refused("stale", f"sent {self.clock() - ps.sent_at:.1f} s ago")
        if not 0 < ps.lifetime_s <= MAX_LIFETIME_S:
            raise Refused("malformed", f"lifetime {ps.lifetime_s} s")
        want = {}
        for e in ps.entries:
            try:
                dst = names.normalize(e.dst)
                dkey = names.name_key(dst)
                srcs = [names.normalize(s) for s in e.src]
            except names.InvalidName as exc:
                raise Refused("malformed", str(exc)) from None
            port, mac = self._resolve(e.next)
            for s in srcs:
                skey, smask = src_match(s)
                want[(dkey, skey, smask)] = (port, mac, dst, s, e.instance)
        return want

    def _resolve(self, nxt: str) -> tuple[int, str]:
        with self.agent.lock:
            if nxt.startswith(LOCAL):
                gw = self.agent.gateway
                h = gw.held.get(nxt[len(LOCAL):]) if gw is not None else None
                if h is None:
                    raise Refused("unknown_next", f"{nxt}: not held here")
                return h.port, h.mac
            for port, nb in self.agent.router.neighbors.items():
                if nb.router == nxt and nb.two_way:
                    return port, nb.mac
        raise Refused("unknown_next", f"{nxt} is not an up neighbour of {self.agent.name}")

    # -- the table ----------------------------------------------------------------------
    def _write(self, want: dict) -> None:
        sw = self.agent.sw
        if sw is None:
            raise Refused("not_connected", "no switch session")

        def entry(k, v):
            dkey, skey, smask = k
            prio = 1 + bin(smask).count("1") // names.COMPONENT_BITS
            return policy_entry(sw, (dkey, FULL), (skey, smask), v[0], v[1], prio)
        ups = [(INSERT, entry(k, v)) for k, v in want.items() if k not in self.installed]
        ups += [(MODIFY, entry(k, v)) for k, v in want.items()
                if k in self.installed and self.installed[k][:2] != v[:2]]
        ups += [(DELETE, entry(k, v)) for k, v in self.installed.items() if k not in want]
        if ups:
            core = sorted(p for p, pt in self.agent.router.ports.items() if pt.role == "core")
            ups += policy_stage(sw, bool(want), core)     # frames skip an empty stage
            sw.write(ups)
            self.changed_at = self.mono()
            log.info("policy stage: %d updates (%d entries, SCSC %s)", len(ups), len(want),
                     self.scsc or "?")
        self.installed = want

    def expire(self) -> None:
        """Called by the FIB writer (under the FIB lock)."""
        if self.installed and self.mono() > self.expires_at:
            log.warning("policies expired (no push from the SCSC within their lifetime): "
                        "back to the FIB")
            self._write({})
            self.expires_at = math.inf
            self.counters["policies_expired"] += 1

    def forget(self) -> None:
        """The switch lost its tables (restart): nothing is installed."""
        self.installed = {}

    def view(self) -> rpb.PoliciesReply:
        out = rpb.PoliciesReply(scsc=self.scsc, version=max(self.version, 0),
                                changed_at=self.changed_at)
        left = self.expires_at - self.mono()
        counts = {}
        sw = self.agent.sw
        if sw is not None and self.installed:
            try:
                for te, pkts, _b in sw.read_direct_counters(N.TABLE_POLICY):
                    d = sw.decode_entry(te)
                    counts[(d["match"].get(N.MATCH_POLICY_DST_KEY, (0, 0))[0],
                            d["match"].get(N.MATCH_POLICY_SRC_KEY, (0, 0))[0])] = pkts
            except Exception as exc:    # inspection only: say so, show the rest
                log.info("policy counters unreadable: %s", exc)
        for (dkey, skey, _m), (port, mac, dst, src, inst) in sorted(self.installed.items()):
            out.policies.add(dst=dst, src=src, port=port, mac=mac, instance=inst,
                             expires_in_s=left if math.isfinite(left) else -1,
                             packets=counts.get((dkey, skey), 0))
        return out
