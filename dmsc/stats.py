"""Every loss on a switch, per port: the kernel's counters beside the P4 program's.

A frame a pod sends reaches the switch's interface (the kernel counts it in
``/sys/class/net/<intf>/statistics/rx_packets``), then BMv2 captures it
(libpcap) and queues it for its pipeline, where the program counts it in the
indexed counter ``port_in`` (one cell per ingress port) before any stage can
drop it. Frames the interface received that ``port_in`` never counted were
lost *before the P4 program*: BMv2's capture buffer or input queue was full
(an unpaced pod outruns BMv2 by far), or they arrived before the pipeline was
pushed. Frames the program saw and dropped are in ``drop_reasons``, frames it
sent to the agent in ``punt_reasons``, both by reason. So

    interface rx_packets = port_in + lost before P4
    port_in              = forwarded + dropped (by reason) + punted (by reason)

and a reader sees every loss. The kernel's own ``rx_dropped`` (the veth's
backlog was full) is shown as well: those frames never reached rx_packets.

The P4 counters start at zero when the agent pushes the pipeline (and again
after a switch restart) while the kernel's count from the interface's
creation: read two snapshots and subtract (:meth:`SwitchStats.since`,
``dmsc stats SWITCH --interval S``) for a window that is exact.

:func:`read_stats` is the library call (a :class:`SwitchStats` per switch,
``to_dict()`` for JSON lines); the experiment runner records it, ``dmsc stats``
prints it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from controller.switch import p4names as N
from controller.switch.p4rt import SwitchConnection
from traffic.wire import defs

SYS_NET = Path("/sys/class/net")
KERNEL_FIELDS = ("rx_packets", "rx_bytes", "rx_dropped", "rx_errors",
                 "tx_packets", "tx_bytes", "tx_dropped", "tx_errors")


class StatsError(RuntimeError):
    pass


def kernel_counters(intf: str, root: Path = SYS_NET) -> dict[str, int]:
    """The interface's counters (root network namespace: the switches' side)."""
    base = root / intf / "statistics"
    try:
        return {f: int((base / f).read_text()) for f in KERNEL_FIELDS}
    except OSError as exc:
        raise StatsError(f"interface {intf}: no counters ({exc.strerror}): is the "
                         f"network running?") from None


@dataclass
class PortStats:
    port: int
    intf: str
    neighbour: str | None
    kernel: dict[str, int]
    p4_in: int                           # frames the P4 program counted on this port

    @property
    def lost_before_p4(self) -> int:
        return self.kernel["rx_packets"] - self.p4_in

    def to_dict(self) -> dict:
        return {"port": self.port, "intf": self.intf, "neighbour": self.neighbour,
                **self.kernel, "p4_in": self.p4_in, "lost_before_p4": self.lost_before_p4}


@dataclass
class SwitchStats:
    switch: str
    ports: list[PortStats]
    drops: dict[str, int]                # P4 drop_reasons, by reason name
    punts: dict[str, int]                # P4 punt_reasons, by reason name
    cpu_in: int = 0                      # port_in of the CPU port: the agent's packet-outs
    at: float = 0.0                      # CLOCK_MONOTONIC of the read

    def port(self, port: int) -> PortStats:
        for p in self.ports:
            if p.port == port:
                return p
        raise StatsError(f"{self.switch} has no port {port}")

    def since(self, before: "SwitchStats") -> "SwitchStats":
        """The counts between two snapshots of the same switch."""
        old = {p.port: p for p in before.ports}
        ports = []
        for p in self.ports:
            o = old.get(p.port)
            ports.append(PortStats(p.port, p.intf, p.neighbour,
                                   {k: v - (o.kernel[k] if o else 0) for k, v in p.kernel.items()},
                                   p.p4_in - (o.p4_in if o else 0)))
        return SwitchStats(self.switch, ports,
                           {k: v - before.drops.get(k, 0) for k, v in self.drops.items()},
                           {k: v - before.punts.get(k, 0) for k, v in self.punts.items()},
                           self.cpu_in - before.cpu_in, self.at - before.at)

    def totals(self) -> dict[str, int]:
        return {"rx_packets": sum(p.kernel["rx_packets"] for p in self.ports),
                "rx_dropped": sum(p.kernel["rx_dropped"] for p in self.ports),
                "p4_in": sum(p.p4_in for p in self.ports),
                "lost_before_p4": sum(p.lost_before_p4 for p in self.ports),
                "p4_dropped": sum(self.drops.values()),
                "punted": sum(self.punts.values())}

    def to_dict(self) -> dict:
        return {"switch": self.switch, "at": self.at, "ports": [p.to_dict() for p in self.ports],
                "drops": self.drops, "punts": self.punts, "cpu_in": self.cpu_in,
                "totals": self.totals()}


def switch_ports(topo, switch: str) -> list[tuple[int, str, str]]:
    """(port, interface, neighbour) of every port the topology gives a switch."""
    return sorted((topo.port(switch, nb), topo.intf_name(switch, topo.port(switch, nb)), nb)
                  for nb in topo.graph.neighbors(switch))


def read_switch(sw: SwitchConnection, topo, switch: str, clock=None,
                sys_root: Path | None = None) -> SwitchStats:
    """One switch's counters: the P4 program's over ``sw`` (a connected
    session with the P4Info), the kernel's from /sys/class/net (``sys_root``)."""
    clock = clock or time.monotonic
    ports = switch_ports(topo, switch)
    # the P4 counters first: every frame they counted, the kernel had counted
    # before, so a frame in flight shows as lost for a moment, never as negative
    cells = sw.read_counter(N.COUNTER_PORT_IN)
    drops = sw.read_counter(N.COUNTER_DROP_REASONS)
    punts = sw.read_counter(N.COUNTER_PUNT_REASONS)
    at = clock()
    out = [PortStats(port, intf, nb, kernel_counters(intf, sys_root or SYS_NET),
                     cells.get(port, (0, 0))[0])
           for port, intf, nb in ports]
    return SwitchStats(switch, out,
                       {name: drops.get(i, (0, 0))[0] for i, name in defs.DROP_REASONS.items()},
                       {name: punts.get(i, (0, 0))[0] for i, name in defs.PUNT_REASONS.items()},
                       cells.get(defs.CPU_PORT, (0, 0))[0], at)


def read_stats(addrs: dict[str, tuple[str, int]], topo) -> dict[str, SwitchStats]:
    """{switch: SwitchStats} for these switches ({name: (grpc_addr, device_id)}),
    over read-only P4Runtime sessions opened and closed here."""
    from dmsc.converge import FibReader
    with FibReader(addrs) as r:
        return {name: read_switch(conn, topo, name) for name, conn in r.conns.items()}


def net_stats(net, switches=None) -> dict[str, SwitchStats]:
    """:func:`read_stats` for a running DmscNet (default: every switch)."""
    names = switches or net.topo.switches()
    return read_stats({s: (net.switch(s).grpc_addr, net.switch(s).device_id) for s in names},
                      net.topo)


def tables(st: SwitchStats, all_reasons: bool = False) -> list:
    """rich Tables of one switch's stats (printing is the caller's)."""
    from rich.table import Table
    t = Table(title=f"{st.switch}: frames per port, kernel interface beside the P4 program")
    for col in ("port", "interface", "to", "rx (kernel)", "rx dropped (kernel)", "P4 port_in",
                "lost before P4", "tx (kernel)", "tx dropped (kernel)"):
        t.add_column(col, justify="right" if col not in ("interface", "to") else "left")
    for p in st.ports:
        k = p.kernel
        t.add_row(str(p.port), p.intf, p.neighbour or "", str(k["rx_packets"]),
                  str(k["rx_dropped"]), str(p.p4_in), str(p.lost_before_p4),
                  str(k["tx_packets"]), str(k["tx_dropped"]))
    tot = st.totals()
    t.add_row("all", "", "", str(tot["rx_packets"]), str(tot["rx_dropped"]), str(tot["p4_in"]),
              str(tot["lost_before_p4"]), "", "")
    out = [t]
    for title, counts in ((f"P4 drops by reason ({tot['p4_dropped']})", st.drops),
                          (f"P4 punts to the agent by reason ({tot['punted']})", st.punts)):
        r = Table(title=title)
        r.add_column("reason")
        r.add_column("frames", justify="right")
        for name, n in counts.items():
            if n or all_reasons:
                r.add_row(name, str(n))
        out.append(r)
    return out
