"""The agent of one SG or SR: the only thing that programs its switch.

It reads its own ports, roles and MACs from the topology file (and nothing
about other switches: routes come only from LSAs), opens its switch session
(controller/agent/switch_session.py: pipeline and base tables), then runs the
routing core (controller/routing/router.py) in its protocol loop: control
frames arrive as packet-ins, frames to neighbours leave as packet-outs, port
carrier is read from the switch's interfaces (port_carrier.py), and every new
RIB goes to the FIB writer (fib_writer.py), which writes it in batches.

Its other jobs, each in its own module and thread: link liveness from the
data plane's echoes (liveness.py: a silent cut found in a few echo rounds,
hellos the backstop), an SG's gateway duties
(gateway.py: pods' announcements, asked of the SPA), the probes (probe_loop.py)
and telemetry to the SCSC (telemetry_reporter.py), the SCSC's policies
(policies.py), ERRORs for requests with no route (no_route_replies.py).

Restarts, both ways:
* agent restart: the switch keeps forwarding with the FIB it has; the agent
  reads it, relearns the LSDB from its neighbours, and for ``grace_s`` (or
  until the LSDB exchange is done) only adds and changes entries, never
  deletes, so traffic does not stop while it relearns; then a full sync
  removes whatever is stale;
* switch restart: the stream breaks, the agent reconnects when the switch is
  back, pushes the pipeline and base tables again and writes the whole FIB.

The process around it (arguments, admin service) is agent_command.py.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time

from controller import keys
from controller.agent.fib_writer import FibWriter
from controller.agent.gateway import DEFAULT_LEASE_S, Gateway
from controller.agent.liveness import ECHO_MISSES, ECHOES_PER_READ, LivenessLoop
from controller.agent.no_route_replies import NoRouteReplies
from controller.agent.policies import Policies
from controller.agent.port_carrier import CARRIER_POLL_S, CarrierPoller
from controller.agent.probe_loop import ProbeLoop
from controller.agent.probes import Prober
from controller.agent.switch_session import SwitchSession
from controller.agent.telemetry_reporter import TelemetryReporter
from controller.agent.tick_lateness import TickLateness
from controller.routing.router import Config, Port, Router
from controller.spa.spa_client import SpaClient
from controller.switch import p4names as N
from controller.switch.p4rt import SwitchConnection, SwitchConnectionError
from topologies.topo import Topology
from traffic.wire import codec, defs

log = logging.getLogger("dmsc.agent")


def switch_ports(topo: Topology, name: str) -> dict[int, Port]:
    return {topo.port(name, nb): Port(topo.port_role(name, topo.port(name, nb)),
                                      topo.mac(name, topo.port(name, nb)),
                                      cost=int(topo.graph.edges[name, nb]["cost"]))
            for nb in topo.graph.neighbors(name)}


class Agent:
    def __init__(self, topo: Topology, switch: str, grpc_addr: str, device_id: int,
                 key: bytes, config: Config, grace_s: float = 3.0, spa_addrs=(),
                 lease_s: float = DEFAULT_LEASE_S, scsc_addr: str | None = None,
                 probe_ms: int = 0, probe_services=(), cpu_intf: str | None = None,
                 echo_ms: int = 0, echo_misses: int = ECHO_MISSES,
                 echoes_per_read: int = ECHOES_PER_READ):
        self.topo = topo
        self.cpu_intf = cpu_intf          # packet I/O through this veth, not the stream
        self.cpu = None
        self.name = switch
        self.lock = threading.RLock()
        # ``key`` is the domain secret: each purpose has a key of its own (controller/keys.py)
        self.router = Router(switch, device_id, topo.kind(switch), switch_ports(topo, switch),
                             keys.derive(key, keys.ROUTING), config, now=time.monotonic())
        self.counters = self.router.counters
        self.sw: SwitchConnection | None = None
        self.stop_event = threading.Event()
        self.ticks = TickLateness()        # the protocol loop's lateness (a fidelity monitor)
        self.session = SwitchSession(switch, grpc_addr, device_id, self.router.ports, topo.copp,
                                     self.stop_event, self.counters)
        self.fib = FibWriter(self, grace_s)
        self.carrier = CarrierPoller({p: topo.intf_name(switch, p) for p in self.router.ports},
                                     self.counters)
        self.no_route = NoRouteReplies(switch, self.counters)
        self.policies = Policies(self, keys.derive(key, keys.POLICY))
        self.telemetry = (TelemetryReporter(self, scsc_addr, keys.derive(key, keys.TELEMETRY))
                          if scsc_addr else None)
        self.probing: ProbeLoop | None = None
        if topo.kind(switch) == "sg" and probe_ms > 0:
            self.probing = ProbeLoop(self, Prober(switch, interval_s=probe_ms / 1000,
                                                  timeout_s=max(0.3, 3 * probe_ms / 1000)),
                                     probe_services)
        # link liveness from the data plane's echoes (liveness.py); 0: hellos alone
        self.liveness = (LivenessLoop(self, echo_ms / 1000, echo_misses, echoes_per_read)
                         if echo_ms > 0 else None)
        self.gateway: Gateway | None = None
        if topo.kind(switch) == "sg":
            self.gateway = Gateway(self, SpaClient(spa_addrs) if spa_addrs else None,
                                   lease_s=lease_s)
            self.router.on_own_prefixes = self._own_prefixes_seen

    def _own_prefixes_seen(self, prefixes, now: float) -> None:
        """Our LSA from before this agent restarted came back from a neighbour:
        while we relearn (no deletes yet), keep its prefixes for one lease."""
        if not self.fib.deletes_allowed:
            self.gateway.adopt(prefixes, now, self._pod_mac)

    def _pod_mac(self, port: int) -> str | None:
        nb = self.topo.neighbour_on(self.name, port)
        return self.topo.mac(nb, 0) if nb is not None and self.topo.kind(nb) == "pod" else None

    # -- the switch session -----------------------------------------------------------
    def connect(self, deadline_s: float | None = None) -> None:
        """(Re)connect and make the switch ready: pipeline, base tables; then
        the FIB is written whole (after an agent restart: no deletes, and no
        transit through this router, until it has relearned)."""
        opened = self.session.open(deadline_s)
        if opened is None:          # stopped while waiting for the switch
            return
        sw, fresh = opened
        self.sw = sw
        self.fib.connected(fresh)
        if fresh:
            self.policies.forget()
        elif not self.fib.deletes_allowed:
            with self.lock:                    # a restart: no transit until relearned
                self.router.set_overload(True, time.monotonic())
        self.counters["switch_connects"] += 1
        log.info("connected to %s (%s pipeline)", self.session.grpc_addr,
                 "new" if fresh else "existing")

    def _reconnect(self, exc) -> None:
        log.warning("switch connection lost (%s): reconnecting", exc)
        self.counters["switch_disconnects"] += 1
        with self.fib.lock:
            if self.sw is not None:
                self.sw.close()
            self.sw = None
            self.connect()
        self.fib.event.set()

    # -- threads ---------------------------------------------------------------
    def run(self) -> None:
        """This thread runs the protocol (packet-in, timers, hellos, LSAs), so
        that adjacencies never wait for a P4Runtime write; the FIB writer turns
        each new RIB into batched writes in its own; the gateway, the probes
        and the FIB counters for the SCSC have theirs."""
        if self.cpu_intf:
            from controller.agent.cpuport import CpuPort
            self.cpu = CpuPort(self.cpu_intf)
        self.connect()
        threads = [threading.Thread(target=self.fib.loop, name=f"{self.name}:fib-writer",
                                    daemon=True)]
        if self.telemetry is not None:
            threads.append(threading.Thread(target=self.telemetry.counters_loop,
                                            name=f"{self.name}:counters", daemon=True))
        if self.probing is not None:
            threads.append(threading.Thread(target=self.probing.loop,
                                            name=f"{self.name}:prober", daemon=True))
        if self.liveness is not None:
            threads.append(threading.Thread(target=self.liveness.loop,
                                            name=f"{self.name}:liveness", daemon=True))
        threads[0].start()
        if self.gateway is not None:
            self.gateway.start()
        for t in threads[1:]:
            t.start()
        try:
            self._protocol_loop()
        finally:
            self.stop_event.set()
            self.fib.event.set()
            threads[0].join(5)
            if self.gateway is not None:
                self.gateway.join(5)
            for t in threads[1:]:
                t.join(5)
            if self.sw is not None:
                self.sw.close()
            if self.cpu is not None:
                self.cpu.close()
            self.carrier.close()

    def _protocol_loop(self) -> None:
        next_carrier = 0.0
        pin = None
        while not self.stop_event.is_set():
            try:
                with self.lock:
                    now = time.monotonic()
                    self.ticks.woke(now)
                    # what arrived first (so a late loop never declares a
                    # neighbour dead whose hellos are waiting in the queue)
                    while pin is not None:
                        self._on_packet_in(pin)
                        pin = self._packet_in(0)
                    if now >= next_carrier:
                        self.carrier.poll(self.router, now)
                        next_carrier = now + CARRIER_POLL_S
                    if self.gateway is not None:
                        self.gateway.expire(now)
                    self.router.tick(now)
                    out, self.router.outbox = self.router.outbox, []
                    rib_changed = self.router.rib_version != self.fib.rib_version
                    t_sleep = time.monotonic()
                    due = min(self.router.next_deadline(), next_carrier)
                    wait = due - t_sleep
                    self.ticks.sleeping_until(due, t_sleep)
                for port, frame in out:
                    self.packet_out(frame, egress_port=port)
                if rib_changed or (not self.fib.deletes_allowed):
                    self.fib.event.set()
                pin = self._packet_in(min(max(wait, 0.001), CARRIER_POLL_S))
            except SwitchConnectionError as exc:
                pin = None
                self._reconnect(exc)

    @contextlib.contextmanager
    def survives(self, thread: str):
        """One round of a worker thread: an unexpected error is logged with its
        traceback and counted (``<thread>_errors``, in ``dmsc stats`` and the
        admin state), and the thread goes on. Before, an unexpected exception
        ended the FIB writer while hellos went on: a switch that looked alive
        and never updated."""
        try:
            yield
        except Exception:
            self.counters[f"{thread}_errors"] += 1
            log.exception("%s: unexpected error (counted; the thread goes on)", thread)
            self.stop_event.wait(0.1)          # no hot loop on a persistent fault

    # -- packets -----------------------------------------------------------------
    def _packet_in(self, timeout: float):
        """The next punted frame (None: ``timeout`` passed or woken); raises
        SwitchConnectionError once the P4Runtime session is gone, in either mode."""
        if self.cpu is None:
            return self.sw.packet_in(timeout=timeout)
        self.sw.packet_in(timeout=0)          # nothing comes here: it only notices a loss
        return self.cpu.packet_in(timeout=timeout)

    def _on_packet_in(self, pin) -> None:
        reason = pin.metadata.get(N.PACKET_IN_REASON)
        port = pin.metadata.get(N.PACKET_IN_INGRESS_PORT, 0)
        if reason == defs.PUNT_CONTROL:
            with self.lock:
                self.router.on_frame(port, pin.payload, time.monotonic())
            return
        self.counters[f"punt_{defs.PUNT_REASONS.get(reason, reason)}"] += 1
        if reason == defs.PUNT_LOCAL:
            self._on_local(pin.payload)
            return
        if reason == defs.PUNT_ANNOUNCE:
            if self.gateway is not None:
                self.gateway.on_frame(port, pin.payload)
            else:
                self.counters["announce_refused_not_an_sg"] += 1
        elif reason == defs.PUNT_NO_ROUTE:
            self.answer_no_route(pin.payload)

    def _on_local(self, raw: bytes) -> None:
        """A frame addressed to this switch: probe replies for the prober.
        Called under the agent's lock; takes the prober's lock inside it (the
        one order both threads use)."""
        try:
            f = codec.decode(raw)
        except ValueError:
            self.counters["local_malformed"] += 1
            return
        if f.type == defs.TYPE_PROBE_REPLY and self.probing is not None:
            self.probing.on_reply(f)
            return
        self.counters[f"local_ignored_{defs.TYPE_NAMES.get(f.type, f.type)}"] += 1

    def answer_no_route(self, raw: bytes) -> None:
        """A request this switch has no route for gets an ERROR (no_route)
        routed back to its source (controller/agent/no_route_replies.py)."""
        frame = self.no_route.answer(raw)
        if frame is not None:
            self.packet_out(frame, flags=defs.PKTOUT_ROUTE)

    def packet_out(self, frame: bytes, **metadata: int) -> None:
        """A frame out through the switch: by the CPU-port interface when the
        agent has one, else as a P4Runtime packet-out."""
        if self.cpu is not None:
            self.cpu.packet_out(frame, metadata.get("egress_port", 0), metadata.get("flags", 0))
        else:
            self.sw.packet_out(frame, **metadata)

    def wake(self) -> None:
        """The protocol loop acts now on a change made from another thread
        (an accepted prefix is originated at once, not at the next timer)."""
        sw = self.sw
        if sw is not None:
            sw.wake()
        cpu = self.cpu
        if cpu is not None:
            cpu.wake()
