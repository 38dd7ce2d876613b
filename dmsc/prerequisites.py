"""What a network needs on this machine (root, BMv2, Mininet), as sentences a
user can act on: ``dmsc check``, ``dmsc up`` and ``dmsc experiment`` ask first."""
from __future__ import annotations

import os
import shutil


def missing_prerequisites(need_root: bool = True) -> list[str]:
    missing = []
    if need_root and os.geteuid() != 0:
        missing.append("root (Mininet creates namespaces and veths): run with sudo")
    if shutil.which("simple_switch_grpc") is None:
        missing.append("simple_switch_grpc (BMv2 with P4Runtime): see README, 'Setup'")
    if shutil.which("mnexec") is None:
        missing.append("mnexec (Debian/Ubuntu package 'mininet')")
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        missing.append("the mininet Python package (package 'mininet'; the venv needs "
                       "--system-site-packages)")
    return missing
