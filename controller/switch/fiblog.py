"""A log of every FIB change, for experiments: one JSON line per write.

Whoever writes a FIB (an agent, or the central controller for every switch)
calls :func:`log` with what the switch held and what it holds now. When the
environment names a file (``DMSC_FIBLOG``, set by ``dmsc experiment`` before it
starts the network; every process the emulation starts inherits it), one line
is appended per write that changed something::

    {"t": 1234.5678, "switch": "sg1", "added": 1, "modified": 0, "deleted": 0,
     "prefixes": ["8baadc55:3c9a936d/64", ...]}

``t`` is CLOCK_MONOTONIC (the clock every process of the testbed shares) after
the write completed; ``prefixes`` are the keys that changed (hex key/length, as
``names.format_key`` prints them: the writer knows keys, the reader maps them
back to names). Without the variable, :func:`log` does nothing. Lines are
written with one ``write`` on a file opened for appending (O_APPEND), so many
processes can share one file and each line stays whole.
"""
from __future__ import annotations

import json
import os
import time

from traffic.wire import names

ENV = "DMSC_FIBLOG"
MAX_PREFIXES = 64        # per line: a cold start writes hundreds; the counts stay exact


def log(switch: str, before: dict, after: dict, *, path: str | None = None,
        clock=time.monotonic) -> dict | None:
    """Append the change from ``before`` to ``after`` ({(key, plen): route})
    of one switch's FIB to the log; the line written, or None (no log file,
    or nothing changed)."""
    path = path or os.environ.get(ENV)
    if not path:
        return None
    added = [k for k in after if k not in before]
    deleted = [k for k in before if k not in after]
    modified = [k for k in after if k in before and before[k] != after[k]]
    if not (added or deleted or modified):
        return None
    changed = sorted(added + modified + deleted)
    line = {"t": clock(), "switch": switch, "added": len(added), "modified": len(modified),
            "deleted": len(deleted),
            "prefixes": [names.format_key(*k) for k in changed[:MAX_PREFIXES]]}
    data = (json.dumps(line) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError:           # a log must never stop a FIB write
        return None
    return line


def read(path) -> list[dict]:
    """The lines of a FIB log (a torn last line, from a killed writer, skipped)."""
    out = []
    try:
        with open(path) as f:
            for raw in f:
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return out
