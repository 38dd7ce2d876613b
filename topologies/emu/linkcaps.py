"""What link impairment this kernel offers, found out rather than assumed.

Bandwidth limits (htb, tbf) are always there. Delay, jitter and loss need the
netem qdisc, which some kernels (this project's CI among them) lack. We try
netem once on a throwaway veth pair inside a throwaway network namespace and
remember the answer; callers warn and skip impairment when it is missing.
"""
from __future__ import annotations

import functools
import os
import subprocess
import uuid


def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


@functools.lru_cache(maxsize=None)
def netem_available() -> bool:
    if os.geteuid() != 0:
        return False
    ns = f"dmsc-netem-{uuid.uuid4().hex[:8]}"
    if not _run("ip", "netns", "add", ns):
        return False
    try:
        if not _run("ip", "-n", ns, "link", "add", "nt0", "type", "veth", "peer", "name", "nt1"):
            return False
        return _run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "nt0",
                    "root", "netem", "delay", "1ms")
    finally:
        _run("ip", "netns", "delete", ns)
