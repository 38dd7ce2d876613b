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
Then the name, for announcements (a withdrawal needs only the first):
* ``invalid`` / ``bad_prefix``: not a name, or deeper than the key's 4 components;
* ``invalid`` / ``key_collision``: its switch key (or an ancestor's) is the key of
  a different name the SPA knows, authorized or announced (CRC-32 keys are forgeable);
Then authorization, in the states of RFC 6811:
* ``not_found`` / ``not_covered``: no authorization covers the prefix;
* ``invalid`` / ``owned_by_other``: the most specific covering authorization (the
  name's owner) does not list this key, though a wider one does (another pod of
  the same service): an instance belongs to its own key, whatever ``max_depth`` a
  wider authorization has (RFC 9319's max-length lesson);
* ``invalid`` / ``key_not_authorized``: covered, but no covering authorization
  lists this key;
* ``invalid`` / ``too_deep``: covered and the key listed, but the prefix is
  deeper than that authorization's ``max_depth``;
* ``valid`` / ``ok``: the most specific covering authorization lists the key and
  allows the depth.
Only ``valid`` is accepted. Pure logic; the clock is passed in.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.spa.prefix_registry import Authorization, Registry, RegistryError
from traffic.wire import defs, names
from traffic.wire.announcement import Announcement

VALID, INVALID, NOT_FOUND = "valid", "invalid", "not_found"
WINDOW_S = 30.0
MAX_NONCES = 1_000_000       # memory bound; the oldest are forgotten first (they are stale anyway)


@dataclass(frozen=True)
class AnnounceVerdict:
    """The SPA's judgement of one announcement (or of a held prefix, revalidated):
    ``state`` VALID, INVALID or NOT_FOUND (RFC 6811's), ``reason`` the counter's name."""
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
        # Names announced and judged valid, with when they were last: their keys are
        # held against colliding names until two windows pass without a renewal.
        self.announced = names.KeyGuard()
        self.announced_at: collections.OrderedDict = collections.OrderedDict()

    def _count(self, v: AnnounceVerdict) -> AnnounceVerdict:
        self.counters[f"{v.state}_{v.reason}"] += 1
        return v

    def _forget_old(self, now: float) -> None:
        while self.nonces:
            (_k, (seen, *_rest)) = next(iter(self.nonces.items()))
            if now - seen <= 2 * self.window_s and len(self.nonces) <= MAX_NONCES:
                break
            self.nonces.popitem(last=False)
        while self.announced_at:
            prefix, seen = next(iter(self.announced_at.items()))
            if now - seen <= 2 * self.window_s and len(self.announced_at) <= MAX_NONCES:
                break
            self.announced_at.popitem(last=False)
            self.announced.discard(prefix)

    def _note_announced(self, prefix: str, now: float) -> None:
        self.announced.add(prefix)          # checked for a collision just before
        self.announced_at.pop(prefix, None)
        self.announced_at[prefix] = now

    def collision(self, prefix: str) -> AnnounceVerdict | None:
        """``key_collision`` when ``prefix`` shares a switch key with a different
        name the SPA knows (authorized or announced); ``bad_prefix`` when it is
        no routable name."""
        try:
            other = self.registry.guard.conflict(prefix) or self.announced.conflict(prefix)
        except names.InvalidName as exc:
            return AnnounceVerdict(INVALID, "bad_prefix", str(exc))
        if other is None:
            return None
        return AnnounceVerdict(INVALID, "key_collision",
                       f"{prefix} has the switch key of {other}, a different name")

    def authorize_prefix(self, prefix: str, max_depth: int | None, keys) -> Authorization:
        """The registry's authorize, refusing also a prefix that collides with an
        announced name (the admin path: ``dmsc spa allow``)."""
        try:
            other = self.announced.conflict(names.normalize(prefix))
        except names.InvalidName as exc:
            raise RegistryError(f"prefix {prefix!r}: {exc}") from None
        if other is not None:
            raise RegistryError(f"prefix {prefix}: has the switch key of {other}, an "
                                f"announced name (a second name for a key is refused)")
        return self.registry.authorize(prefix, max_depth, keys)

    def check(self, ann: Announcement, where: tuple[str, int] = ("", 0)) -> AnnounceVerdict:
        """The verdict on one announcement (or withdrawal) from SG port ``where``."""
        now = self.clock()
        self._forget_old(now)
        name = self.registry.by_key_id.get(ann.key_id)
        if name is None:
            return self._count(AnnounceVerdict(INVALID, "unknown_key", f"no key {ann.key_id} in the registry"))
        try:
            Ed25519PublicKey.from_public_bytes(self.registry.keys[name]).verify(
                ann.signature, ann.signed_bytes())
        except InvalidSignature:
            return self._count(AnnounceVerdict(INVALID, "bad_signature",
                                       f"signature does not verify with key {name}"))
        age = now - ann.timestamp_ns / 1e9
        if abs(age) > self.window_s:
            return self._count(AnnounceVerdict(INVALID, "stale_timestamp",
                                       f"timestamp {age:+.1f} s from the SPA's clock "
                                       f"(window {self.window_s:g} s)"))
        k = (ann.key_id, ann.nonce)
        seen = self.nonces.get(k)
        if seen is not None:
            _t, where0, sig0, verdict0 = seen
            if where0 == where and sig0 == ann.signature:
                return self._count(verdict0)          # the SG retrying: same answer
            return self._count(AnnounceVerdict(INVALID, "replay",
                                       f"nonce already used by key {name}"))
        if ann.msg_type == defs.TYPE_WITHDRAW:
            v = AnnounceVerdict(VALID, "ok", f"withdrawal signed by {name}")
            self.announced_at.pop(ann.prefix, None)
            self.announced.discard(ann.prefix)
        else:
            v = self.collision(ann.prefix) or self.authorize(ann.prefix, ann.key_id)
            if v.valid:
                self._note_announced(names.normalize(ann.prefix), now)
        self.nonces[k] = (now, where, ann.signature, v)
        return self._count(v)

    def authorize(self, prefix: str, key_id: str) -> AnnounceVerdict:
        """RFC 6811 states for (prefix, key): no authentication, no counting."""
        try:
            depth = len(names.components(prefix))
        except names.InvalidName as exc:
            return AnnounceVerdict(INVALID, "bad_prefix", str(exc))
        name = self.registry.by_key_id.get(key_id)
        if name is None:
            return AnnounceVerdict(INVALID, "unknown_key", f"no key {key_id} in the registry")
        covering = self.registry.covering(prefix)
        if not covering:
            return AnnounceVerdict(NOT_FOUND, "not_covered", f"no authorization covers {prefix}")
        # The most specific covering authorization owns the name: a wider one's
        # max_depth never hands a name that has an owner to another key.
        owner = max(covering, key=lambda a: a.depth)
        listed = [a for a in covering if name in a.keys]
        if name not in owner.keys:
            if listed:        # a pod of the same service reaching for a sibling's name
                return AnnounceVerdict(INVALID, "owned_by_other",
                               f"{prefix} belongs to key(s) {', '.join(owner.keys)} "
                               f"({owner.prefix}); key {name}'s authorization for "
                               f"{', '.join(a.prefix for a in listed)} does not reach it")
            return AnnounceVerdict(INVALID, "key_not_authorized",
                           f"{prefix} is authorized to {_list(covering)}, not to key {name}")
        if depth > owner.max_depth:
            return AnnounceVerdict(INVALID, "too_deep",
                           f"{prefix} has {depth} components; key {name} may announce at "
                           f"most {owner.max_depth} under {owner.prefix}")
        return AnnounceVerdict(VALID, "ok", f"{prefix} authorized to key {name}")

    def revalidate(self, held) -> list[AnnounceVerdict]:
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
