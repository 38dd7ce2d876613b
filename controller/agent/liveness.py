"""Link liveness from the data plane: BFD's echo mode, reflected by the P4 program.

A silent cut (no carrier change) is only seen by frames that stop arriving.
Hellos are such frames, but each costs the far agent's Python (a packet-in, an
HMAC, the router) as well as ours, so on a machine running 64 agents on 2 cores
they cannot be sent often (docs/routing.md: 640 ms a hello at ring:64, 1.92 s to
declare a neighbour dead). An echo costs the far switch's data plane only: the
agent sends one on each core port (a packet-out to the neighbour's port MAC),
the neighbour's P4 program sends it straight back (docs/wire-format.md, type
``echo``), and our P4 program counts it in ``echo_rx[ingress port]`` and drops
it. Once a round the agent reads the cells of its core ports in one P4Runtime
read and sends the next echoes (docs/dataplane.md: the echo path and its cost).

:class:`EchoMonitor` is the decision, without I/O (unit-tested): a port whose
counter has not moved for ``misses`` rounds while its adjacency is up is down
(``Router.on_echo``: the same path as a carrier loss, counted
``adj_down_echo``), and its hellos are not heard until the counter moves again;
then the hellos bring the adjacency back (both must agree). A port whose echoes
were never answered (a neighbour whose program does not reflect them) is left to
the hellos, which stay the backstop everywhere.

:class:`LivenessLoop` is the agent's thread around it.
"""
from __future__ import annotations

import logging
import time

from controller.switch import p4names as N
from controller.switch.p4rt import SwitchError
from traffic.wire import codec, defs, names

log = logging.getLogger("dmsc.agent")

ECHO_MISSES = 2            # echoes unanswered in a row: the neighbour is down
ECHOES_PER_READ = 2        # echo_rx is read once for this many echoes on each port
ECHO_MS_MIN = 40
ECHO_HELLO_MAX_MS = 80     # echoes by default only at the agents' default hello interval
ECHO_MAX_FACTOR = 8        # a port's misses double after a premature verdict, up to 8x
ECHO_DECAY_S = 30.0        # and halve back after this long without another
ECHO_QUIET_S = 1.0         # no misses counted this long after our own FIB write
ECHO_LATE_FACTOR = 1.5     # a read this many read periods after the one before: we were
#                            starved, and so probably were the switches: no verdict
# ``--echo-ms fast``: echoes every half hello interval, one unanswered echo is a
# verdict, a read every echo, and hellos relaxed 4x where echoes answer: at
# ring:64 (hellos 640 ms) a silent cut rerouted in 775 ms (median of 5) at 1.63x the
# idle CPU of hellos alone (docs/routing.md, "where a reroute's time goes"); one miss
# also declares links down when a burst starves the switches for a third of a second
# (fewer since a late read gives no verdict)
FAST_MISSES = 1
FAST_PER_READ = 1
FAST_HELLO_RELAX = 4


def fast_echo_ms(hello_ms: int) -> int:
    return max(ECHO_MS_MIN, hello_ms // 2)


def echo_ms_for(hello_ms: int) -> int:
    """The default echo interval for a hello interval (which grows with the
    network's size on these cores, topologies/emu/apps/agent_app.agent_timers):
    a third of it, at least ECHO_MS_MIN, while the hellos run at the agents'
    default (80 ms: Figure 2, echoes every 40 ms, a cut seen in 80-160 ms);
    none where the hellos were stretched for the machine's sake. At ring:64,
    echoes every 128 ms cost the idle agents 1.8x and the BMv2s 4.8x their CPU
    with hellos alone, slowed flooding 3x and made the open-loop reroute worse,
    not better (docs/routing.md, "Echo liveness, measured"): there ``--echo-ms``
    turns them on."""
    return max(ECHO_MS_MIN, hello_ms // 3) if hello_ms <= ECHO_HELLO_MAX_MS else 0


class EchoMonitor:
    """Which ports' echoes stopped or came back, from the ``echo_rx`` cells read
    once a round. ``misses``: echoes unanswered in a row (counted at the reads)
    before a port with an adjacency is declared down."""

    def __init__(self, misses: int = ECHO_MISSES, max_factor: int = ECHO_MAX_FACTOR,
                 decay_s: float = ECHO_DECAY_S):
        if misses < 1:
            raise ValueError("misses must be at least 1")
        self.misses = misses
        self.max_factor = max_factor
        self.decay_s = decay_s
        # Late is not dead (as the hellos' adaptive dead interval, docs/routing.md):
        # echoes back before the port had been silent twice as long as when it was
        # declared down were only late (a switch stalled by a FIB write, a starved
        # machine): that port's misses double, and halve back after decay_s.
        self.raised: dict[int, tuple[int, float]] = {}   # port -> (misses, since)
        self.declared: dict[int, float] = {}             # port -> silence when declared (s)
        self.premature = 0
        self.last: dict[int, int] = {}          # port -> echo_rx at the last read
        self.missed: dict[int, int] = {}        # port -> echoes unanswered in a row
        self.moved_at: dict[int, float] = {}    # port -> when its counter last moved
        self.answered: set[int] = set()         # echoes answered since start or since down
        self.down: set[int] = set()             # declared down; up when echoes move again

    def observe(self, counts: dict[int, int], sent: dict[int, int], adjacent: set[int],
                now: float) -> list[tuple[int, bool, float]]:
        """``counts``: the ports' ``echo_rx`` cells now; ``sent``: echoes sent
        out of each port since the read before (each at least one echo interval
        ago); ``adjacent``: ports with an adjacency up. Returns ``(port, alive,
        silent_ms)`` for each port that went down (``alive`` False) or whose
        echoes came back after it did (True)."""
        events = []
        for port, (k, since) in list(self.raised.items()):
            if now - since > self.decay_s:
                k = max(self.misses, k // 2)
                if k > self.misses:
                    self.raised[port] = (k, now)
                else:
                    del self.raised[port]
        for port, count in counts.items():
            prev = self.last.get(port)
            self.last[port] = count
            if prev is None or count < prev:      # first read, or the switch restarted
                self.missed[port] = 0
                continue
            if count > prev:
                self.missed[port] = 0
                self.answered.add(port)
                if port in self.down:
                    self.down.discard(port)
                    events.append((port, True, 0.0))
                    self._back(port, now)
                self.moved_at[port] = now
                continue
            if port in self.down:
                continue
            if port not in self.answered or port not in adjacent:
                self.missed[port] = 0
                continue
            self.missed[port] = self.missed.get(port, 0) + sent.get(port, 0)
            if self.missed[port] >= self.misses_for(port):
                self.missed[port] = 0
                self.down.add(port)
                self.answered.discard(port)
                silent = now - self.moved_at.get(port, now)
                self.declared[port] = silent
                events.append((port, False, silent * 1000))
        return events

    def misses_for(self, port: int) -> int:
        raised = self.raised.get(port)
        return raised[0] if raised else self.misses

    def _back(self, port: int, now: float) -> None:
        """Echoes came back on a port declared down: was it too early?"""
        declared = self.declared.pop(port, None)
        if declared is None or now - self.moved_at.get(port, now) >= 2 * declared:
            return
        self.premature += 1
        k = min(2 * self.misses_for(port), self.max_factor * self.misses)
        self.raised[port] = (k, now)
        log.warning("port %d: echoes back %.0f ms after a silence of %.0f ms was declared "
                    "down: %d echoes unanswered before the next verdict", port,
                    (now - self.moved_at.get(port, now)) * 1000, declared * 1000, k)


def echo_frame(switch: str, src_mac: str, dst_mac: str, seq: int) -> bytes:
    """An echo out of one port (docs/wire-format.md): to the neighbour's port
    MAC, from ours; the neighbour's data plane sends it back."""
    return codec.encode(defs.TYPE_ECHO, names.switch_name(), names.switch_name(switch),
                        msg_id=seq & 0xFFFFFFFF, hop_limit=1, eth_src=src_mac, eth_dst=dst_mac)


class LivenessLoop:
    """``agent``'s echo thread: every ``interval_s`` one echo out of each core
    port with carrier; every ``per_read`` echoes, first one read of ``echo_rx``
    for its core ports and the monitor's verdicts to the router."""

    def __init__(self, agent, interval_s: float, misses: int = ECHO_MISSES,
                 per_read: int = ECHOES_PER_READ):
        self.agent = agent
        self.interval_s = interval_s
        self.per_read = max(1, per_read)
        self.monitor = EchoMonitor(misses)
        topo, me = agent.topo, agent.name
        self.ports = sorted(p for p, pt in agent.router.ports.items() if pt.role == "core")
        self.frames: dict[int, bytes] = {}     # the same bytes every time: built once
        for p in self.ports:
            nb = topo.neighbour_on(me, p)
            if nb is not None:
                self.frames[p] = echo_frame(me, agent.router.ports[p].mac,
                                            topo.mac(nb, topo.port(nb, me)), p)
        self.sent: dict[int, int] = {}         # echoes out of each port since the last read
        self.ticks = 0
        self.read_at: float | None = None      # when the last read was made

    def loop(self) -> None:
        nxt = time.monotonic()
        while not self.agent.stop_event.wait(max(0.0, nxt - time.monotonic())):
            with self.agent.survives("liveness"):
                self.tick(time.monotonic())
            # the next echo one interval on; a late one does not make a burst
            nxt = max(nxt + self.interval_s, time.monotonic() + self.interval_s / 2)

    def tick(self, now: float) -> None:
        """One echo interval: the read first when one is due, then the echoes."""
        agent = self.agent
        if agent.sw is None or not self.frames:
            self.sent = {}
            return
        if self.ticks % self.per_read == 0:
            self.read(now)
        self.ticks += 1
        router = agent.router
        try:
            for p, frame in self.frames.items():
                if router.ports[p].up:
                    agent.packet_out(frame, egress_port=p)
                    self.sent[p] = self.sent.get(p, 0) + 1
        except (SwitchError, OSError) as exc:
            log.debug("echo not sent: %s", exc)

    def read(self, now: float) -> None:
        agent = self.agent
        try:
            counts = agent.sw.read_counter_cells(N.COUNTER_ECHO_RX, self.ports)
        except (SwitchError, AttributeError) as exc:   # reconnecting: the protocol loop's job
            log.debug("echo_rx not read: %s", exc)
            self.sent = {}
            return
        sent, self.sent = self.sent, {}
        # a read long after the one before: this thread got no CPU for a while
        # (a burst on the machine, as 32 pods starting at once), and the
        # switches, whose echoes were as late, probably none either
        late = (self.read_at is not None
                and now - self.read_at > ECHO_LATE_FACTOR * self.per_read * self.interval_s)
        self.read_at = now
        router = agent.router
        premature = self.monitor.premature
        with agent.lock:
            # our own FIB write stalls our switch's packets (and a neighbour's
            # write its reflections) for a while: no misses counted just after
            quiet = now - agent.fib.written_at > ECHO_QUIET_S and not late
            if late:
                agent.counters["echo_reads_late"] += 1
            adjacent = {p for p, nb in router.neighbors.items() if nb.two_way} if quiet else set()
            events = self.monitor.observe(counts, sent, adjacent, now)
            for port, alive, silent_ms in events:
                router.on_echo(port, alive, now, silent_ms)
            # where echoes are answered the router may relax its hellos
            router.echo_live = self.monitor.answered - self.monitor.down
            agent.counters["echo_reads"] += 1
            if self.monitor.premature > premature:
                agent.counters["adj_down_echo_premature"] += self.monitor.premature - premature
        if events:
            agent.wake()                        # the protocol loop acts on it now
