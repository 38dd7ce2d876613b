"""Measured convergence: poll every switch's FIB over P4Runtime until it
equals what SPF over the topology says, and return how long that took.

Never a fixed sleep: the helpers poll with a deadline and either return the
elapsed time or raise :class:`NotConverged` naming the switches that differ.
"""
from __future__ import annotations

import time

from controller.fib import Fib
from controller.p4rt import Switch, SwitchError
from controller.route import Route
from topologies import routes
from topologies.topo import Topology
from traffic import names

READER_IDS = range(1, 90)     # below the agents' 100 (and 90-99 for tools that write)


def connect_reader(name: str, addr: str, device_id: int) -> Switch:
    """A read-only session. Election ids must be unique per switch, and other
    readers (tests, `dmsc fib`) may hold some: try free ones in random order."""
    import random
    last = None
    for low in random.sample(READER_IDS, 12):
        sw = Switch(name, addr, device_id, election_id=(0, low))
        try:
            sw.connect(require_primary=False)
            sw.fetch_p4info()
            return sw
        except SwitchError as exc:
            sw.close()
            last = exc
    raise last


class NotConverged(AssertionError):
    pass


def expected_fibs(topo: Topology, core=None, prefixes=None) -> dict[str, dict]:
    """{switch: {(key, plen): Route}} from the topology file alone."""
    return {s: {names.prefix_key(p): Route.via(h) for p, h in fib.items() if h}
            for s, fib in routes.expected_fibs(topo, prefixes=prefixes, core=core).items()}


class FibReader:
    """Read-only P4Runtime sessions to many switches."""

    def __init__(self, addrs: dict[str, tuple[str, int]]):
        self.conns: dict[str, Switch] = {}
        try:
            for name, (addr, dev) in addrs.items():
                self.conns[name] = connect_reader(name, addr, dev)
        except BaseException:
            self.close()
            raise

    @classmethod
    def for_net(cls, net, switches=None) -> "FibReader":
        names_ = switches or net.topo.switches()
        return cls({s: (net.switch(s).grpc_addr, net.switch(s).device_id) for s in names_})

    def read(self, name: str) -> dict:
        return Fib(self.conns[name]).read()

    def close(self) -> None:
        for sw in self.conns.values():
            sw.close()
        self.conns = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def diff_summary(want: dict, got: dict, idx: names.NameIndex | None = None) -> str:
    def n(k):
        return idx.lookup(*k) if idx else names.format_key(*k)
    missing = [n(k) for k in want if k not in got]
    extra = [n(k) for k in got if k not in want]
    wrong = [n(k) for k in want if k in got and got[k] != want[k]]
    return f"missing {missing[:5]} extra {extra[:5]} wrong {wrong[:5]}"


def wait_converged(reader: FibReader, expected: dict[str, dict], timeout: float = 10.0,
                   poll: float = 0.005, idx: names.NameIndex | None = None,
                   check=None) -> float:
    """Seconds until every switch in ``expected`` holds exactly its FIB
    (``check(name, fib)`` may replace equality). Raises NotConverged."""
    t0 = time.monotonic()
    while True:
        # every switch in one pass: "all equal at one moment", not one by one
        last = {name: reader.read(name) for name in sorted(expected)}
        bad = [n for n, got in last.items()
               if not (check(n, got) if check else got == expected[n])]
        if not bad:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            detail = "; ".join(f"{s}: {diff_summary(expected[s], last[s], idx)}" for s in bad)
            raise NotConverged(f"not converged after {timeout}s: {detail}")
        time.sleep(poll)
