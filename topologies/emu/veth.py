"""Veth pairs: the one-switch tier's and the benchmarks', and a network's
CPU-port veths (DmscNet in cpu-port mode).

:func:`add_pair` makes one pair in the root namespace, up, with IPv6 off (no
stray router solicitations on the wire); :func:`delete` removes it.
``VethPairs(n)`` makes n pairs, ``<tag><i>s`` for the switch and ``<tag><i>h``
for the test's side, with a random tag so that runs never collide.
Leaving the context deletes them (deleting one end deletes the pair), even
after a failure.
"""
from __future__ import annotations

import subprocess
import uuid


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def add_pair(a: str, b: str) -> None:
    """The veth pair a <-> b, both ends up, IPv6 off (removed again if that fails)."""
    _ip("link", "add", a, "type", "veth", "peer", "name", b)
    try:
        for dev in (a, b):
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"],
                           capture_output=True)
            _ip("link", "set", dev, "up")
    except BaseException:
        delete(a)
        raise


def delete(end: str) -> str | None:
    """Delete the pair that ``end`` belongs to (deleting one end deletes the
    pair); None, or why it failed (a pair already gone is no failure)."""
    out = subprocess.run(["ip", "link", "del", end], capture_output=True, text=True)
    if out.returncode != 0 and "Cannot find" not in out.stderr:
        return out.stderr.strip()
    return None


class VethPairs:
    def __init__(self, n: int, prefix: str = "dv"):
        self.n = n
        self.tag = f"{prefix}{uuid.uuid4().hex[:4]}"
        self.created: list[str] = []

    def switch_side(self, i: int) -> str:
        return f"{self.tag}{i}s"

    def host_side(self, i: int) -> str:
        return f"{self.tag}{i}h"

    def __enter__(self):
        try:
            for i in range(1, self.n + 1):
                add_pair(self.switch_side(i), self.host_side(i))
                self.created.append(self.switch_side(i))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for s in self.created:
            delete(s)
        self.created = []
