"""Service names and their match keys: the one implementation of the encoding.

A name is hierarchical and '/'-separated: ``/shop/cart``, ``/shop/cart/i4``.
The switch cannot hash variable-length strings, so the sender puts a
fixed-width key in the header and the switch does longest-prefix match on it:

* each of the first ``NAME_COMPONENTS`` (4) components is hashed with CRC-32
  (IEEE 802.3, as ``zlib.crc32``) of its UTF-8 bytes to ``COMPONENT_BITS`` (32)
  bits;
* the hashes are concatenated, first component in the most significant bits,
  and unused slots are zero, giving a 128-bit key;
* a prefix of k components matches with prefix length k x 32.

Names deeper than four components are routed by their first four (the key
ignores the rest; the textual name travels in a TLV and the endpoint checks it).
A *prefix* deeper than four components cannot be routed distinctly and is
refused (:class:`PrefixTooDeep`). docs/wire-format.md is the prose version.
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

from traffic.wire.defs import COMPONENT_BITS, NAME_COMPONENTS

KEY_BITS = NAME_COMPONENTS * COMPONENT_BITS
KEY_BYTES = KEY_BITS // 8
MAX_COMPONENT_BYTES = 255
MAX_NAME_BYTES = 1024

_COMPONENT_MASK = (1 << COMPONENT_BITS) - 1


# Names under /dmsc belong to the testbed's switches, never to a service: a
# switch signs the frames it originates (hellos, LSAs, no-route errors, probes)
# with /dmsc/sw/<switch>, and link-local control frames go to /dmsc/sw.
RESERVED_ROOT = "/dmsc"
SWITCHES = RESERVED_ROOT + "/sw"


def switch_name(switch: str | None = None) -> str:
    """The reserved name of one switch (``/dmsc/sw/sg1``), or with no switch
    the link-local destination of control frames (``/dmsc/sw``)."""
    return SWITCHES if switch is None else normalize(f"{SWITCHES}/{switch}")


def is_reserved(name: str) -> bool:
    return components(name)[:1] == (RESERVED_ROOT[1:],)


class InvalidName(ValueError):
    """A string that is not a DMSC name; the message says what is wrong."""


class PrefixTooDeep(InvalidName):
    """A prefix with more components than the key can tell apart."""


def components(name: str) -> tuple[str, ...]:
    """Split and check a name. ``/`` is the root (no components)."""
    if not isinstance(name, str):
        raise InvalidName(f"a name is a string, not {type(name).__name__}")
    return _components(name)


@functools.lru_cache(maxsize=1 << 14)    # every control frame names its two ends
def _components(name: str) -> tuple[str, ...]:
    if not name.startswith("/"):
        raise InvalidName(f"name {name!r} must start with '/'")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidName(f"name is longer than {MAX_NAME_BYTES} bytes")
    if name == "/":
        return ()
    parts = tuple(name[1:].split("/"))
    for part in parts:
        if part == "":
            raise InvalidName(f"name {name!r} has an empty component")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise InvalidName(f"component {part[:20]!r}... is longer than "
                              f"{MAX_COMPONENT_BYTES} bytes")
        if any(ord(ch) < 0x20 for ch in part):
            raise InvalidName(f"name {name!r} has a control character")
    return parts


def normalize(name: str) -> str:
    """The canonical text of a name (checked)."""
    return "/" + "/".join(components(name))


def component_hash(component: str) -> int:
    return zlib.crc32(component.encode("utf-8")) & _COMPONENT_MASK


def _key(parts: tuple[str, ...]) -> int:
    key = 0
    for i in range(NAME_COMPONENTS):
        key <<= COMPONENT_BITS
        if i < len(parts):
            key |= component_hash(parts[i])
    return key


def name_key(name: str) -> int:
    """The 128-bit key a frame addressed to ``name`` carries."""
    return _key(components(name)[:NAME_COMPONENTS])


@functools.lru_cache(maxsize=1 << 16)      # SPF turns every prefix into its key each run
def prefix_key(prefix: str) -> tuple[int, int]:
    """(key, prefix length in bits) of a routable prefix."""
    parts = components(prefix)
    if len(parts) > NAME_COMPONENTS:
        raise PrefixTooDeep(
            f"prefix {prefix!r} has {len(parts)} components; the name key tells "
            f"apart at most {NAME_COMPONENTS}")
    return _key(parts), len(parts) * COMPONENT_BITS


def key_bytes(key: int) -> bytes:
    return key.to_bytes(KEY_BYTES, "big")


def format_key(key: int, prefix_len: int = KEY_BITS) -> str:
    """Hex, one group per component, only the components the prefix covers."""
    groups = [(key >> (COMPONENT_BITS * (NAME_COMPONENTS - 1 - i))) & _COMPONENT_MASK
              for i in range(NAME_COMPONENTS)]
    shown = max(0, prefix_len // COMPONENT_BITS)
    body = ":".join(f"{g:08x}" for g in groups[:shown])
    return f"{body or '-'}/{prefix_len}"


def prefix_matches(prefix: str, name: str) -> bool:
    """Does ``prefix`` cover ``name`` component-wise (the textual check)?"""
    p, n = components(prefix), components(name)
    return n[:len(p)] == p


@dataclass
class NameIndex:
    """Turns keys back into the names that produced them (for inspection).

    Hash collisions are reported, not hidden: ``add`` raises if two different
    prefixes of the same length give the same key.
    """
    by_key: dict[tuple[int, int], str]

    def __init__(self, names=()):
        self.by_key = {}
        for name in names:
            self.add(name)

    def add(self, prefix: str) -> tuple[int, int]:
        prefix = normalize(prefix)
        kl = prefix_key(prefix)
        other = self.by_key.get(kl)
        if other is not None and other != prefix:
            raise InvalidName(f"{prefix!r} and {other!r} have the same key "
                              f"{format_key(*kl)}")
        self.by_key[kl] = prefix
        return kl

    def lookup(self, key: int, prefix_len: int) -> str:
        return self.by_key.get((key, prefix_len)) or f"<unknown {format_key(key, prefix_len)}>"


class KeyGuard:
    """Refuses a name whose key another name already has: collision-free keys.

    The key is CRC-32 per component, which senders compute and anyone can forge
    (CRC-32 is affine over GF(2): a printable component with a chosen CRC-32 takes
    milliseconds). So wherever names are authorized or arrive (the SPA, every
    agent's RIB, the central controller) the text is kept beside the key, and a
    second text for a key already held is refused. Every ancestor of a name is
    held too: ``/X/4`` with ``crc(X) == crc(B)`` falls inside ``/B``'s key space
    (an LPM match for calls to ``/B/...``), so it collides with ``/B`` even while no
    ``/B/4`` exists. Names deeper than ``NAME_COMPONENTS`` cannot be told apart by
    the key and are refused (:class:`PrefixTooDeep`).

    Names are reference-counted per ancestor, so removing one name releases only
    the keys no other name still needs.
    """

    def __init__(self, prefixes=()):
        self._held: dict[tuple[int, int], list] = {}     # (key, len) -> [text, refcount]
        self.names: set[str] = set()
        for p in prefixes:
            self.add(p)

    @staticmethod
    def _ancestors(prefix: str):
        parts = components(prefix)
        if len(parts) > NAME_COMPONENTS:
            raise PrefixTooDeep(
                f"name {prefix!r} has {len(parts)} components; the name key tells apart "
                f"at most {NAME_COMPONENTS}")
        for i in range(1, len(parts) + 1):
            text = "/" + "/".join(parts[:i])
            yield prefix_key(text), text

    def conflict(self, prefix: str) -> str | None:
        """The held name (``prefix`` itself or an ancestor's counterpart) whose key
        ``prefix`` shares with a different text, or None. Raises InvalidName for a
        bad name, PrefixTooDeep for one deeper than the key."""
        found = self._conflict(prefix)
        return None if found is None else found[0]

    def _conflict(self, prefix: str):
        for kl, text in self._ancestors(prefix):
            held = self._held.get(kl)
            if held is not None and held[0] != text:
                return held[0], kl
        return None

    def check(self, prefix: str) -> None:
        """Raise :class:`KeyCollision` (naming the other name) if ``prefix`` collides."""
        found = self._conflict(prefix)
        if found is not None:
            raise KeyCollision(normalize(prefix), *found)

    def add(self, prefix: str) -> None:
        """Hold ``prefix``; raises :class:`KeyCollision` naming the other name."""
        prefix = normalize(prefix)
        if prefix in self.names:
            return
        self.check(prefix)
        for kl, text in self._ancestors(prefix):
            self._held.setdefault(kl, [text, 0])[1] += 1
        self.names.add(prefix)

    def discard(self, prefix: str) -> None:
        prefix = normalize(prefix)
        if prefix not in self.names:
            return
        self.names.discard(prefix)
        for kl, _text in self._ancestors(prefix):
            held = self._held[kl]
            held[1] -= 1
            if held[1] == 0:
                del self._held[kl]


class KeyCollision(InvalidName):
    """Two different names with one key (or one's ancestor key)."""

    def __init__(self, prefix: str, other: str, kl: tuple[int, int]):
        self.prefix, self.other = prefix, other
        super().__init__(f"{prefix} has the switch key of {other} ({format_key(*kl)}): "
                         f"CRC-32 keys can be forged, so a second name for a key is refused")
