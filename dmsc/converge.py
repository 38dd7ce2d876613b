"""Measured convergence: poll every switch's FIB over P4Runtime until it
equals what SPF over the topology says, and return how long that took.

Never a fixed sleep: the helpers poll with a deadline and either return the
elapsed time or raise :class:`NotConverged` naming the switches that differ.
"""
from __future__ import annotations

import time

from controller.switch.tables import Fib
from controller.switch.p4rt import SwitchConnection, SwitchError
from controller.routing.route import Route
from topologies.expected import reference_fibs
from topologies.topo import Topology
from traffic.wire import names

READER_IDS = range(1, 90)     # below the agents' 100 (and 90-99 for tools that write)


def connect_reader(name: str, addr: str, device_id: int) -> SwitchConnection:
    """A read-only session. Election ids must be unique per switch, and other
    readers (tests, `dmsc fib`) may hold some: try free ones in random order."""
    import random
    last = None
    for low in random.sample(READER_IDS, 12):
        sw = SwitchConnection(name, addr, device_id, election_id=(0, low))
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
            for s, fib in reference_fibs(topo, prefixes=prefixes, core=core).items()}


class FibReader:
    """Read-only P4Runtime sessions to many switches."""

    def __init__(self, addrs: dict[str, tuple[str, int]]):
        self.conns: dict[str, SwitchConnection] = {}
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
                   check=None, clock=time.monotonic) -> float:
    """Seconds until every switch in ``expected`` holds exactly its FIB
    (``check(name, fib)`` may replace equality). Raises NotConverged.

    Reading every FIB takes a while (tens of ms for a handful of switches on
    a loaded machine), so a pass is not an instant. Each switch is read until
    it is seen right, and then left alone; once all have been seen right, one
    more pass over all of them confirms that none has moved since (one that
    has is read again until right). The time returned is when the last switch
    was first seen right: the resolution is one read of one switch plus
    ``poll``, and never earlier than the truth. On time-out the message shows,
    for each switch not right, how its latest read differs from what was
    expected (the confirming pass's read included)."""
    def ok(name, got):
        return check(name, got) if check else got == expected[name]

    t0 = clock()
    seen_right: dict[str, float] = {}
    last: dict[str, dict] = {}
    while True:
        for name in sorted(expected):
            if name in seen_right:
                continue
            last[name] = reader.read(name)
            if ok(name, last[name]):
                seen_right[name] = clock()
        if len(seen_right) == len(expected):
            moved = []
            for n in sorted(expected):
                last[n] = reader.read(n)
                if not ok(n, last[n]):
                    moved.append(n)
            if not moved:
                return max(seen_right.values()) - t0
            for n in moved:
                del seen_right[n]
        if clock() - t0 > timeout:
            bad = [n for n in sorted(expected) if n not in seen_right]
            detail = "; ".join(f"{s}: {diff_summary(expected[s], last[s], idx)}" for s in bad)
            raise NotConverged(f"not converged after {timeout}s: {detail}")
        time.sleep(poll)


def bring_up(net, timeout: float = 60.0, mode: str = "distributed", **mesh_kw):
    """Start a DmscNet and its whole control plane (SPA, agents or, with
    ``mode="central"``, the central controller, the SCSC when the SGs probe,
    announcing pods), and wait until every announcement is accepted and every
    FIB equals SPF over the topology. ``mode="mesh"``: the service-mesh
    baseline instead (docs/mesh.md; ``mesh_kw`` to DmscNet.start_mesh), until
    every sidecar holds every endpoint of the topology. Stops the network if
    that fails; returns it."""
    if mode == "central" and net.packet_io != "stream":
        net.packet_io = "stream"     # the controller's packet I/O is the P4Runtime stream
    try:
        if mode == "mesh":
            net.start()
            net.start_spa()
            net.start_mesh(**mesh_kw)
            net.mesh.wait_endpoints(net.mesh.all_endpoints(), timeout=timeout)
            return net
        net.start()
        net.start_control(mode=mode)
        net.wait_announced(timeout=timeout)
        with FibReader.for_net(net) as reader:
            wait_converged(reader, expected_fibs(net.topo), timeout=timeout)
    except BaseException:
        net.stop()
        raise
    return net
