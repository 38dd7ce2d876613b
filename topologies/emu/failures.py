"""Failure injection on a running DmscNet: links, switches.

A failed link is a silent cut: a tbf qdisc that drops every frame, on the
egress of both ends. Not ``ip link set down``: BMv2's port loop spins at 100%
CPU on an interface that goes down (its pcap read fails forever), which
starves a small machine. So carrier stays up and the agents notice the
failure from missing hellos, as they would a cut behind a media converter.
A killed switch is a SIGKILLed BMv2 whose interfaces stay up.
"""
from __future__ import annotations

from topologies.emu.linkcaps import netem_available

_CUT = "tc qdisc replace dev {intf} root tbf rate 8bit burst 1 limit 1"


class FailureError(RuntimeError):
    pass


class Failures:
    def __init__(self, net):
        self.net = net
        self.cut: set[frozenset] = set()     # links cut by link_down (the live view marks them)

    def _ends(self, a: str, b: str):
        topo = self.net.topo
        for node, nb in ((a, b), (b, a)):
            yield self.net.mn.get(node), topo.intf_name(node, topo.port(node, nb))

    def link_down(self, a: str, b: str) -> None:
        for node, intf in self._ends(a, b):
            out = node.cmd(_CUT.format(intf=intf))
            if out.strip():
                raise FailureError(f"cutting {intf}: {out.strip()}")
        self.cut.add(frozenset((a, b)))
        self._reroute_mesh()

    def link_up(self, a: str, b: str) -> None:
        bw = self.net.topo.graph.edges[a, b].get("bw")
        for node, intf in self._ends(a, b):
            out = node.cmd(f"tc qdisc del dev {intf} root")
            if out.strip() and "No such file" not in out:
                raise FailureError(f"restoring {intf}: {out.strip()}")
            if bw is not None:                       # restore the link's shaping
                node.intf(intf).config(bw=float(bw))
        self.cut.discard(frozenset((a, b)))
        self._reroute_mesh()

    def _reroute_mesh(self) -> None:
        """The mesh baseline's IPv4 fabric has no routing protocol of its own:
        its SPF routes are written again without the cut links at once (an IGP
        that noticed instantly: the mesh's best case, docs/mesh.md)."""
        if getattr(self.net, "mesh", None) is not None:
            self.net.mesh.program_fabric(down_links=[tuple(link) for link in self.cut])

    def link_rate(self, a: str, b: str, mbit: float) -> None:
        """Cut the link's bandwidth to ``mbit`` Mbit/s in both directions (tbf,
        queueing up to 200 ms before it drops); ``link_up`` restores it."""
        for node, intf in self._ends(a, b):
            out = node.cmd(f"tc qdisc replace dev {intf} root tbf rate {mbit}mbit "
                           f"burst 4kb latency 200ms")
            if out.strip():
                raise FailureError(f"shaping {intf}: {out.strip()}")

    def link_delay(self, a: str, b: str, delay_ms: float, jitter_ms: float = 0.0) -> None:
        """Add delay (and jitter) to the link, both ways: netem, which only some
        kernels have (``dmsc check`` says); FailureError naming that when absent."""
        if not netem_available():
            raise FailureError("link delay and jitter need the kernel's netem qdisc, which "
                               "this kernel lacks (htb/tbf only): use link_rate or a pod's "
                               "service time instead")
        for node, intf in self._ends(a, b):
            out = node.cmd(f"tc qdisc replace dev {intf} root netem delay {delay_ms}ms "
                           f"{jitter_ms}ms")
            if out.strip():
                raise FailureError(f"delaying {intf}: {out.strip()}")

    def kill_switch(self, name: str) -> None:
        """SIGKILL the switch's BMv2 (its interfaces stay up: neighbours must
        notice through missing hellos)."""
        self.net.switch(name).kill()

    def restart_switch(self, name: str) -> None:
        """Start the switch's BMv2 again, same ports and gRPC port, empty."""
        sw = self.net.switch(name)
        sw.bmv2.start()
        sw.bmv2.ready()
