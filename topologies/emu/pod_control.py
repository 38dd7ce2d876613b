"""A running pod's files in ``RUN_DIR/pods/``: how the testbed steers it,
how it says what it announced, where it writes its spans.

``<pod>.control.json`` is written here and read by the pod (traffic/pod.py,
``--control-file``) whenever it changes: ``service_ms`` (every answer that
much later: a degraded instance), ``extra`` (instances started at run time),
``withdrawn`` (prefixes withdrawn, signed, and no longer announced).
``<pod>.status.json`` is written by the pod (``--status-file``): the state of
each prefix it announces (pending, accepted, refused, withdrawn) and why.
``<pod>.spans.jsonl``: the spans of a pod serving an application (traffic/callgraph.py).
"""
from __future__ import annotations

import json
from pathlib import Path


def pods_dir(run_dir) -> Path:
    return Path(run_dir) / "pods"


def control_file(run_dir, pod: str) -> Path:
    return pods_dir(run_dir) / f"{pod}.control.json"


def status_file(run_dir, pod: str) -> Path:
    return pods_dir(run_dir) / f"{pod}.status.json"


def span_file(run_dir, pod: str) -> Path:
    """Where a pod serving an application (``--app``) writes its spans (``--trace-file``)."""
    return pods_dir(run_dir) / f"{pod}.spans.jsonl"


def read_control(run_dir, pod: str) -> dict:
    """The pod's control file, {} if there is none (or it is not an object)."""
    try:
        ctl = json.loads(control_file(run_dir, pod).read_text())
    except (OSError, ValueError):
        return {}
    return ctl if isinstance(ctl, dict) else {}


def update_control(run_dir, pod: str, **changes) -> dict:
    """Merge ``changes`` into the pod's control file, atomically (the pod
    never reads half a file); the whole new content."""
    ctl = {**read_control(run_dir, pod), **changes}
    path = control_file(run_dir, pod)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ctl))
    tmp.replace(path)
    return ctl


def announcements(run_dir, pod: str) -> dict:
    """{prefix: {"state": ..., ...}} from the pod's status file, {} before it wrote one."""
    try:
        return json.loads(status_file(run_dir, pod).read_text())["prefixes"]
    except (OSError, ValueError, KeyError):
        return {}
