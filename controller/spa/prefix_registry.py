"""The SPA's registry: which keys may announce which prefixes (compare RPKI ROAs).

A YAML file::

    keys:                                  # name -> Ed25519 public key
      pod1: {public: "base64 of the raw 32-byte key"}
      pod4: {file: keys/pod4.pub}          # or a file holding that base64 (relative to this file)
    authorizations:
      - prefix: /B                         # the service, to the keys of all its pods
        keys: [pod1, pod4]
      - prefix: /B/4                       # an instance name, to its own pod's key only
        keys: [pod4]
      - prefix: /lab                       # optional: the deepest prefix allowed under
        max_depth: 3                       # it, in components (a ROA's maxLength); absent,
        keys: [pod9]                       # the authorization is for the exact prefix

RFC 9319's lesson: an authorization is for what is announced, nothing more. A
``max_depth`` hands every name under the prefix to every listed key, so the
generated registry never uses it; and the most specific authorization covering a
name decides who owns it (``/B/4`` above belongs to pod4 alone, even to a key that
``/B`` with a ``max_depth`` would admit). No two authorized prefixes may share a
switch key (:class:`traffic.wire.names.KeyGuard`).

Every error names the file, the line and the field (:class:`RegistryError`).
Authorizations and keys can be added and revoked at run time (the SPA's
gRPC; ``dmsc spa``); the file is not rewritten.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from traffic.wire import names
from traffic.wire.announcement import key_id_of


class RegistryError(ValueError):
    pass


@dataclass
class Authorization:
    prefix: str
    max_depth: int
    keys: list[str] = field(default_factory=list)      # key names

    def covers(self, prefix: str) -> bool:
        return names.prefix_matches(self.prefix, prefix)

    @property
    def depth(self) -> int:
        return len(names.components(self.prefix))


class _LineLoader(yaml.SafeLoader):
    """Mappings remember the line they start on (``__line__``)."""


def _construct_mapping(loader, node, deep=False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def decode_public(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this is {len(raw)}")
    return raw


class Registry:
    def __init__(self, source: str = "<memory>"):
        self.source = source
        self.keys: dict[str, bytes] = {}             # name -> raw public key
        self.by_key_id: dict[str, str] = {}          # key id -> name
        self._by_prefix: dict[str, Authorization] = {}   # normalized prefix -> it
        self.guard = names.KeyGuard()                # the authorized prefixes' keys

    # -- changes (each checked) ------------------------------------------
    def add_key(self, name: str, public_raw: bytes) -> None:
        if not name or not isinstance(name, str):
            raise RegistryError("a key needs a name")
        if len(public_raw) != 32:
            raise RegistryError(f"key {name}: an Ed25519 public key is 32 bytes")
        kid = key_id_of(public_raw)
        other = self.by_key_id.get(kid)
        if other is not None and other != name:
            raise RegistryError(f"key {name} is the same key as {other}")
        old = self.keys.get(name)
        if old is not None:
            self.by_key_id.pop(key_id_of(old), None)
        self.keys[name] = public_raw
        self.by_key_id[kid] = name

    def authorize(self, prefix: str, max_depth: int | None, keys) -> Authorization:
        """Authorize ``prefix`` (exactly, or down to ``max_depth`` components) to
        ``keys``; replaces an authorization of the same prefix."""
        try:
            prefix = names.normalize(prefix)
            names.prefix_key(prefix)
            other = self.guard.conflict(prefix)
        except names.InvalidName as exc:
            raise RegistryError(f"prefix {prefix!r}: {exc}") from None
        if other is not None:
            raise RegistryError(f"prefix {prefix}: has the switch key of {other} (a second "
                                f"name for a key is refused: CRC-32 keys can be forged)")
        depth = len(names.components(prefix))
        if max_depth is None:
            max_depth = depth
        if not isinstance(max_depth, int) or isinstance(max_depth, bool) \
                or not depth <= max_depth <= names.NAME_COMPONENTS:
            raise RegistryError(f"prefix {prefix}: max_depth must be a whole number from "
                                f"{depth} (the prefix's own depth) to {names.NAME_COMPONENTS}, "
                                f"not {max_depth!r}")
        keys = list(keys)
        unknown = [k for k in keys if k not in self.keys]
        if unknown:
            raise RegistryError(f"prefix {prefix}: unknown key(s) {', '.join(map(str, unknown))}")
        if not keys:
            raise RegistryError(f"prefix {prefix}: names no key")
        self.revoke(prefix)
        auth = Authorization(prefix, max_depth, keys)
        self._by_prefix[prefix] = auth
        self.guard.add(prefix)
        return auth

    def revoke(self, prefix: str) -> bool:
        prefix = names.normalize(prefix)
        self.guard.discard(prefix)
        return self._by_prefix.pop(prefix, None) is not None

    @property
    def authorizations(self) -> list[Authorization]:
        """Every authorization, in the order given (a replaced one moves last)."""
        return list(self._by_prefix.values())

    def covering(self, prefix: str) -> list[Authorization]:
        """The authorizations whose prefix covers ``prefix`` (itself or an ancestor),
        shortest first: one dict look-up per component, not a scan of them all (at
        1,000 instances the scan was 87 % of the SPA's time on a check)."""
        comps = names.components(prefix)
        out = []
        for i in range(len(comps) + 1):
            a = self._by_prefix.get("/" + "/".join(comps[:i]))
            if a is not None:
                out.append(a)
        return out

    # -- the file ----------------------------------------------------------------
    @classmethod
    def load(cls, path) -> "Registry":
        path = Path(path)
        try:
            doc = yaml.load(path.read_text(), Loader=_LineLoader)
        except OSError as exc:
            raise RegistryError(f"{path}: cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = str(mark.line + 1) if mark else "?"
            raise RegistryError(f"{path}:{where}: not YAML ({getattr(exc, 'problem', exc)})") \
                from None
        reg = cls(str(path))
        if not isinstance(doc, dict):
            raise RegistryError(f"{path}:1: a registry is a mapping with 'keys' and "
                                f"'authorizations'")
        unknown = set(doc) - {"keys", "authorizations", "__line__"}
        if unknown:
            raise RegistryError(f"{path}:{doc['__line__']}: unknown field(s) "
                                f"{', '.join(sorted(unknown))}")
        keys = doc.get("keys") or {}
        if not isinstance(keys, dict):
            raise RegistryError(f"{path}: 'keys' must map key names to keys")
        for name, spec in keys.items():
            if name == "__line__":
                continue
            line = spec.get("__line__", keys["__line__"]) if isinstance(spec, dict) \
                else keys["__line__"]
            where = f"{path}:{line}: key {name}"
            if not isinstance(spec, dict) or not ({"public", "file"} & set(spec)):
                raise RegistryError(f"{where}: give 'public' (base64) or 'file'")
            try:
                text = spec["public"] if "public" in spec else \
                    (path.parent / spec["file"]).read_text()
                reg.add_key(str(name), decode_public(str(text)))
            except OSError as exc:
                raise RegistryError(f"{where}: file {spec['file']}: {exc.strerror}") from None
            except (ValueError, RegistryError) as exc:
                raise RegistryError(f"{where}: {exc}") from None
        auths = doc.get("authorizations") or []
        if not isinstance(auths, list):
            raise RegistryError(f"{path}: 'authorizations' must be a list")
        for a in auths:
            if not isinstance(a, dict):
                raise RegistryError(f"{path}: an authorization is a mapping "
                                    f"(prefix, keys, optional max_depth), not {a!r}")
            where = f"{path}:{a['__line__']}"
            extra = set(a) - {"prefix", "max_depth", "keys", "__line__"}
            if extra:
                raise RegistryError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
            for fld in ("prefix", "keys"):
                if fld not in a:
                    raise RegistryError(f"{where}: authorization without '{fld}'")
            if not isinstance(a["keys"], list):
                raise RegistryError(f"{where}: 'keys' must be a list of key names")
            try:
                reg.authorize(str(a["prefix"]), a.get("max_depth"), [str(k) for k in a["keys"]])
            except RegistryError as exc:
                raise RegistryError(f"{where}: {exc}") from None
        return reg

    def dump(self) -> str:
        """The registry as a file (keys inline)."""
        doc = {"keys": {n: {"public": base64.b64encode(k).decode()} for n, k in self.keys.items()},
               "authorizations": [{"prefix": a.prefix, "keys": a.keys}
                                  | ({"max_depth": a.max_depth} if a.max_depth != a.depth else {})
                                  for a in self.authorizations]}
        return yaml.safe_dump(doc, sort_keys=False)
