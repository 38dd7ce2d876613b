"""The link-state database: newer-sequence-wins, aging and purge.

Keyed by (origin, fragment). Each entry keeps the LSA as received and its
expiry on this agent's monotonic clock; the remaining lifetime written into a
re-flooded copy is computed from that expiry, so an LSA ages the same way
everywhere (IS-IS's remaining lifetime). A purge is an LSA with lifetime 0: it
wins over the same sequence number (so it can be flooded), is kept for a
short hold so that it spreads and late copies of the old one are refused, and
then removed.
"""
from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from controller.proto.routing_pb2 import Lsa

PURGE_HOLD_S = 5.0


class LsaVerdict(enum.Enum):
    """How a received LSA compares with the copy the LSDB holds."""
    NEWER = "newer"      # installed: flood it, recompute
    SAME = "same"        # already have it: just acknowledge
    OLDER = "older"      # we have a newer one: send ours back


@dataclass
class Entry:
    lsa: Lsa
    expires: float       # monotonic time at which it is purged

    def remaining_ms(self, now: float) -> int:
        return max(0, int((self.expires - now) * 1000))

    @property
    def purged(self) -> bool:
        return self.lsa.lifetime_ms == 0

    @functools.cached_property
    def view(self) -> tuple[str, str, tuple, tuple, bool]:
        """(origin, kind, ((neighbour, cost, port), ...), ((prefix, port), ...),
        overload):
        the LSA in plain Python, read once per installed copy (SPF reads LSAs
        often, and protobuf 3.20's pure-Python getters are slow). Valid for
        live entries: an installed copy is never changed, only replaced (aging
        turns it into a purge, which SPF skips)."""
        lsa = self.lsa
        return (lsa.origin, lsa.kind,
                tuple((a.neighbor, a.cost, a.port) for a in lsa.adjacencies),
                tuple((p.prefix, p.port) for p in lsa.prefixes), lsa.overload)


def key(lsa: Lsa) -> tuple[str, int]:
    return lsa.origin, lsa.fragment


class Lsdb:
    def __init__(self):
        self.entries: dict[tuple[str, int], Entry] = {}
        self.changed: set[str] = set()   # origins changed since SPF last built its graph
        self.spf_state = None            # SPF's graph, kept up to date from `changed`

    def compare(self, lsa: Lsa) -> LsaVerdict:
        have = self.entries.get(key(lsa))
        if have is None:
            return LsaVerdict.NEWER if lsa.lifetime_ms > 0 else LsaVerdict.SAME
        if lsa.seq != have.lsa.seq:
            return LsaVerdict.NEWER if lsa.seq > have.lsa.seq else LsaVerdict.OLDER
        if lsa.lifetime_ms == 0 and not have.purged:
            return LsaVerdict.NEWER             # purge of the copy we hold
        return LsaVerdict.SAME

    def install(self, lsa: Lsa, now: float) -> LsaVerdict:
        """Install ``lsa`` if it is newer than what we hold."""
        verdict = self.compare(lsa)
        if verdict is LsaVerdict.NEWER:
            life = lsa.lifetime_ms / 1000 if lsa.lifetime_ms else PURGE_HOLD_S
            copy = Lsa()
            copy.CopyFrom(lsa)
            self.entries[key(lsa)] = Entry(copy, now + life)
            self.changed.add(lsa.origin)
        return verdict

    def get(self, origin: str, fragment: int = 0) -> Entry | None:
        return self.entries.get((origin, fragment))

    def live(self):
        """Entries that count for SPF (not purged)."""
        return [e for e in self.entries.values() if not e.purged]

    def age(self, now: float) -> tuple[list[Lsa], list[tuple[str, int]]]:
        """Expire what has run out: returns (purges to flood, keys removed).

        A live LSA whose lifetime ends becomes a purge (flooded so everyone
        drops it); a purge whose hold ends is removed.
        """
        purges, removed = [], []
        for k, e in list(self.entries.items()):
            if e.expires > now:
                continue
            self.changed.add(k[0])
            if e.purged:
                del self.entries[k]
                removed.append(k)
            else:
                e.lsa.lifetime_ms = 0
                e.lsa.ClearField("adjacencies")
                e.lsa.ClearField("prefixes")
                e.expires = now + PURGE_HOLD_S
                purges.append(e.lsa)
        return purges, removed

    def outgoing(self, k: tuple[str, int], now: float) -> Lsa:
        """The copy to flood: our entry with its remaining lifetime."""
        e = self.entries[k]
        out = Lsa()
        out.CopyFrom(e.lsa)
        if not e.purged:
            out.lifetime_ms = max(1, e.remaining_ms(now))
        return out

    def origins(self) -> set[str]:
        return {o for (o, _f), e in self.entries.items() if not e.purged}
