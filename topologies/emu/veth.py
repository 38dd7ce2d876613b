"""Veth pairs for the one-switch tier and the benchmarks.

``VethPairs(n)`` makes n pairs in the root namespace, ``<tag><i>s`` for the
switch and ``<tag><i>h`` for the test's side, with IPv6 off (no stray
router solicitations on the wire) and a random tag so that runs never collide.
Leaving the context deletes them (deleting one end deletes the pair), even
after a failure.
"""
from __future__ import annotations

import subprocess
import uuid


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


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
                s, h = self.switch_side(i), self.host_side(i)
                _ip("link", "add", s, "type", "veth", "peer", "name", h)
                self.created.append(s)
                for dev in (s, h):
                    subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"],
                                   capture_output=True)
                    _ip("link", "set", dev, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for s in self.created:
            subprocess.run(["ip", "link", "del", s], capture_output=True)
        self.created = []
