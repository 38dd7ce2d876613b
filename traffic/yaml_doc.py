"""Checked reading of a YAML file's node tree: every error names the file, the
line and the field. The application files (traffic.callgraph) and the
experiment files (dmsc.experiment.spec) read their documents through it."""
from __future__ import annotations

import yaml
from yaml.constructor import SafeConstructor


class FileError(ValueError):
    """A bad file: the message names the file, the line and the field."""

    def __init__(self, source: str, line: int | None, fld: str, msg: str):
        self.source, self.line, self.field = source, line, fld
        where = f"{source}, line {line}" if line else source
        super().__init__(f"{where}, {fld}: {msg}" if fld else f"{where}: {msg}")


class YamlDoc:
    """The node tree of one file and how to turn nodes into checked values.
    Subclasses name their ``error`` class and what a top-level mapping is
    (``kind``, for "unknown field; an experiment has: ...")."""

    error: type[FileError] = FileError
    kind = "the file"

    def __init__(self, source: str):
        self.source = source
        self.ctor = SafeConstructor()

    def err(self, node, fld: str, msg: str) -> FileError:
        line = node.start_mark.line + 1 if node is not None else None
        return self.error(self.source, line, fld, msg)

    def value(self, node):
        return self.ctor.construct_object(node, deep=True)

    def mapping(self, node, fld: str, allowed: dict | None) -> dict:
        """{key: (key node, value node)} of a mapping, unknown and repeated
        keys refused. ``allowed``: key -> True if required (None: any key)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.err(node, fld or "the file", "must be a mapping (key: value)")
        out = {}
        for k, v in node.value:
            key = self.value(k)
            path = f"{fld}.{key}" if fld else str(key)
            if not isinstance(key, str):
                raise self.err(k, path, "keys must be strings")
            if key in out:
                raise self.err(k, path, "given twice")
            if allowed is not None and key not in allowed:
                raise self.err(k, path, f"unknown field; {fld or self.kind} has: "
                                        f"{', '.join(allowed)}")
            out[key] = (k, v)
        for key, required in (allowed or {}).items():
            if required and key not in out:
                raise self.err(node, f"{fld}.{key}" if fld else key, "is required")
        return out
