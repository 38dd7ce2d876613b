"""The SPA's verdicts: authentication (signature, freshness, replay), then
authorization in the states of RFC 6811 (BGP prefix origin validation).

Authentication comes first, because a verdict about who may announce what
means nothing for an announcement whose author is not known:
* ``unknown_key``: the key id is in no registry entry (state invalid);
* ``bad_signature``: Ed25519 over the announcement's signed bytes fails;
* ``stale_timestamp``: more than ``window_s`` away from the SPA's clock;
* ``replay``: a (key id, nonce) seen before within the window, from another
  SG port or with another signature. The same announcement again from the
  same SG port (the SG retrying after a lost answer) gets the same verdict.
Then authorization, for announcements (a withdrawal needs only the first):
* ``not_found`` / ``not_covered``: no authorization covers the prefix;
* ``invalid`` / ``key_not_authorized``: covered, but no covering authorization
  lists this key;
* ``invalid`` / ``too_deep``: covered and the key listed, but the prefix is
  deeper than that authorization's ``max_depth``;
* ``valid`` / ``ok``: some covering authorization lists the key and allows the depth.
Only ``valid`` is accepted. Pure logic; the clock is passed in.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.spa.registry import Registry
from traffic.wire import defs, names
from traffic.wire.announce import Announcement

VALID, INVALID, NOT_FOUND = "valid", "invalid", "not_found"
WINDOW_S = 30.0
MAX_NONCES = 1_000_000       # memory bound; the oldest are forgotten first (they are stale anyway)


@dataclass(frozen=True)
class Verdict:
    state: str
    reason: str
    text: str = ""

    @property
    def valid(self) -> bool:
        return self.state == VALID


class Validator:
    def __init__(self, registry: Registry, window_s: float = WINDOW_S, clock=time.time):
        self.registry = registry
        self.window_s = window_s
        self.clock = clock
        # (key id, nonce) -> (seen at, where, signature, verdict), oldest first
        self.nonces: collections.OrderedDict = collections.OrderedDict()
        self.counters: collections.Counter = collections.Counter()

    def _count(self, v: Verdict) -> Verdict:
        self.counters[f"{v.state}_{v.reason}"] += 1
        return v

    def _forget_old(self, now: float) -> None:
        while self.nonces:
            (_k, (seen, *_rest)) = next(iter(self.nonces.items()))
            if now - seen <= 2 * self.window_s and len(self.nonces) <= MAX_NONCES:
                break
            self.nonces.popitem(last=False)

    def check(self, ann: Announcement, where: tuple[str, int] = ("", 0)) -> Verdict:
        """The verdict on one announcement (or withdrawal) from SG port ``where``."""
        now = self.clock()
        self._forget_old(now)
        name = self.registry.by_key_id.get(ann.key_id)
        if name is None:
            return self._count(Verdict(INVALID, "unknown_key", f"no key {ann.key_id} in the registry"))
        try:
            Ed25519PublicKey.from_public_bytes(self.registry.keys[name]).verify(
                ann.signature, ann.signed_bytes())
        except InvalidSignature:
            return self._count(Verdict(INVALID, "bad_signature",
                                       f"signature does not verify with key {name}"))
        age = now - ann.timestamp_ns / 1e9
        if abs(age) > self.window_s:
            return self._count(Verdict(INVALID, "stale_timestamp",
                                       f"timestamp {age:+.1f} s from the SPA's clock "
                                       f"(window {self.window_s:g} s)"))
        k = (ann.key_id, ann.nonce)
        seen = self.nonces.get(k)
        if seen is not None:
            _t, where0, sig0, verdict0 = seen
            if where0 == where and sig0 == ann.signature:
                return self._count(verdict0)          # the SG retrying: same answer
            return self._count(Verdict(INVALID, "replay",
                                       f"nonce already used by key {name}"))
        if ann.msg_type == defs.TYPE_WITHDRAW:
            v = Verdict(VALID, "ok", f"withdrawal signed by {name}")
        else:
            v = self.authorize(ann.prefix, ann.key_id)
        self.nonces[k] = (now, where, ann.signature, v)
        return self._count(v)

    def authorize(self, prefix: str, key_id: str) -> Verdict:
        """RFC 6811 states for (prefix, key): no authentication, no counting."""
        try:
            depth = len(names.components(prefix))
        except names.InvalidName as exc:
            return Verdict(INVALID, "bad_prefix", str(exc))
        name = self.registry.by_key_id.get(key_id)
        if name is None:
            return Verdict(INVALID, "unknown_key", f"no key {key_id} in the registry")
        covering = self.registry.covering(prefix)
        if not covering:
            return Verdict(NOT_FOUND, "not_covered", f"no authorization covers {prefix}")
        listed = [a for a in covering if name in a.keys]
        if not listed:
            return Verdict(INVALID, "key_not_authorized",
                           f"{prefix} is authorized to {_list(covering)}, not to key {name}")
        if not any(depth <= a.max_depth for a in listed):
            deepest = max(a.max_depth for a in listed)
            return Verdict(INVALID, "too_deep",
                           f"{prefix} has {depth} components; key {name} may announce at "
                           f"most {deepest} under {', '.join(a.prefix for a in listed)}")
        return Verdict(VALID, "ok", f"{prefix} authorized to key {name}")

    def revalidate(self, held) -> list[Verdict]:
        """Verdicts for [(prefix, key id)] an SG holds (after a revocation)."""
        out = []
        for prefix, key_id in held:
            v = self.authorize(prefix, key_id)
            if not v.valid:
                self.counters[f"revalidate_{v.state}_{v.reason}"] += 1
            out.append(v)
        return out


def _list(auths) -> str:
    return "; ".join(f"{a.prefix} (keys {', '.join(a.keys)})" for a in auths)
