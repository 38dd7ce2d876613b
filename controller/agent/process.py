"""The agent process: one per SG/SR, the only thing that programs its switch.

    python -m controller.agent --topo topologies/fig2.yaml --switch sg1 \\
        --grpc-addr 127.0.0.1:50001 --device-id 1 --admin-addr 127.0.0.1:50101 \\
        --key-file runs/x/domain.key

It reads its own ports, roles and MACs from the topology file (and nothing
about other switches: routes come only from LSAs), connects to its switch over
P4Runtime, makes sure the pipeline and base tables are there, then runs the
routing core (controller/routing.py): control frames arrive as packet-ins,
frames to neighbours leave as packet-outs, port carrier is read from the
switch's interfaces, and every new RIB is diffed against the switch's FIB and
written in batches.

Restarts, both ways:
* agent restart: the switch keeps forwarding with the FIB it has; the agent
  reads it, relearns the LSDB from its neighbours, and for ``--grace-s`` (or
  until the LSDB exchange is done) only adds and changes entries, never
  deletes, so traffic does not stop while it relearns; then a full sync
  removes whatever is stale;
* switch restart: the stream breaks, the agent reconnects when the switch is
  back, pushes the pipeline and base tables again and writes the whole FIB.

An SG also does its gateway duties (controller/agent/gateway.py): pods'
announcements arrive as packet-ins, the SPA is asked, and only what it calls
valid enters the LSA.

A local admin service (gRPC, 127.0.0.1 only) serves inspection and the
operator override ``AcceptPrefix`` (a prefix accepted without the SPA, named as
such in the log); nothing a pod sends reaches it. SIGTERM stops the agent and
leaves the switch forwarding.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from controller.agent.gateway import DEFAULT_LEASE_S, Gateway
from controller.agent.policies import Policies
from controller.agent.probes import Prober
from controller.proto import scsc_pb2 as scsc_pb
from controller.proto import scsc_pb2_grpc as scsc_grpc
from controller import keys
from controller.keys import sign
from controller.routing import spf
from controller.spa.spa_client import SpaClient
from controller.switch.tables import Fib, SourceGuard, base_entries, copp_updates
from controller.switch.p4rt import (MODIFY, PipelineError, SwitchConnection, SwitchConnectionError,
                             SwitchError, WriteError)
from controller.proto import routing_pb2 as pb
from controller.proto import routing_pb2_grpc as pb_grpc
from controller.routing.router import Config, Port, Router
from controller.switch import fiblog
from controller.switch import p4names as N
from controller.switch.artifacts import BMV2_JSON, P4INFO
from topologies.topo import CPU_PORT, Topology
from traffic.wire import codec, defs, names
from controller.rpc import EXCLUSIVE_PORT, bind, check_listen_addr

log = logging.getLogger("dmsc.agent")

AGENT_ELECTION_ID = (0, 100)   # above any inspection tool, which stays a backup
CARRIER_POLL_S = 0.1     # carrier is a hint; hellos are what detect failures
NO_ROUTE_PER_S = 50.0
COUNTERS_S = 2.0         # FIB counters to the SCSC this often (when there is one)
QUIET_S = 0.3


def switch_ports(topo: Topology, name: str) -> dict[int, Port]:
    return {topo.port(name, nb): Port(topo.port_role(name, topo.port(name, nb)),
                                      topo.mac(name, topo.port(name, nb)),
                                      cost=int(topo.graph.edges[name, nb]["cost"]))
            for nb in topo.graph.neighbors(name)}


def carrier(intf: str) -> bool | None:
    """The interface's carrier, or None when it cannot be read (no such
    interface here, a namespace we cannot see): unknown is not down, so the
    caller leaves failure detection to the hellos, and counts it."""
    try:
        return Path(f"/sys/class/net/{intf}/operstate").read_text().strip() != "down"
    except OSError:
        return None


class CarrierReader:
    """:func:`carrier` for the same interfaces again and again: each file is
    opened once and re-read in place (sysfs gives the current state on every
    read at offset 0). Opening and closing the file every 100 ms on every port
    was a fifth of an idle agent's Python time (py-spy, docs/decisions.md)."""

    def __init__(self):
        self.fds: dict[str, int] = {}

    def __call__(self, intf: str) -> bool | None:
        fd = self.fds.get(intf)
        try:
            if fd is None:
                fd = self.fds[intf] = os.open(f"/sys/class/net/{intf}/operstate", os.O_RDONLY)
            return os.pread(fd, 32, 0).strip() != b"down"
        except OSError:
            self.close(intf)
            return None

    def close(self, intf: str | None = None) -> None:
        for name in ([intf] if intf else list(self.fds)):
            fd = self.fds.pop(name, None)
            if fd is not None:
                os.close(fd)


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; take() spends one."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.t = burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Agent:
    def __init__(self, topo: Topology, switch: str, grpc_addr: str, device_id: int,
                 key: bytes, config: Config, grace_s: float = 3.0, spa_addrs=(),
                 lease_s: float = DEFAULT_LEASE_S, scsc_addr: str | None = None,
                 probe_ms: int = 0, probe_services=(), cpu_intf: str | None = None):
        self.topo = topo
        self.cpu_intf = cpu_intf          # packet I/O through this veth, not the stream
        self.cpu = None
        # pipeline pushes that may run at once (agents sharing a process share one)
        self.connect_gate = contextlib.nullcontext()
        self.name = switch
        self.grpc_addr = grpc_addr
        self.device_id = device_id
        self.grace_s = grace_s
        self.lock = threading.RLock()
        # ``key`` is the domain secret: each purpose has a key of its own (controller/keys.py)
        self.router = Router(switch, device_id, topo.kind(switch), switch_ports(topo, switch),
                             keys.derive(key, keys.ROUTING), config, now=time.monotonic())
        self.intfs = {p: topo.intf_name(switch, p) for p in self.router.ports}
        self.sw: SwitchConnection | None = None
        self.stop_event = threading.Event()
        self.fib_event = threading.Event()
        self.fib_lock = threading.Lock()      # one FIB writer; reconnects wait for it
        self.fib_cache: dict | None = None    # what this agent last wrote (None: read it)
        self.src_cache: set | None = None     # the same for the source-name table
        self.fib_version = 0
        self.fib_written_at = 0.0
        self.fib_rib_version = -1
        self.started = time.monotonic()
        self.fib_deletes_allowed = False
        self._lift_overload = False
        self.counters = self.router.counters
        self.no_route_limit = TokenBucket(NO_ROUTE_PER_S, burst=NO_ROUTE_PER_S)
        self.policies = Policies(self, keys.derive(key, keys.POLICY))
        self.telemetry_key = keys.derive(key, keys.TELEMETRY)
        self.prober: Prober | None = None
        self.prober_lock = threading.Lock()
        self.scsc_addr = scsc_addr
        self.probe_services = {names.normalize(x) for x in probe_services}
        self.telemetry_seq = int(time.time() * 1000)     # above any earlier run's
        self.seq_lock = threading.Lock()
        if topo.kind(switch) == "sg" and probe_ms > 0:
            self.prober = Prober(switch, interval_s=probe_ms / 1000,
                                 timeout_s=max(0.3, 3 * probe_ms / 1000))
        self.gateway: Gateway | None = None
        if topo.kind(switch) == "sg":
            self.gateway = Gateway(self, SpaClient(spa_addrs) if spa_addrs else None,
                                   lease_s=lease_s)
            self.router.on_own_prefixes = self._own_prefixes_seen
        self._carrier_unreadable: set[str] = set()
        self._carrier = CarrierReader()

    def _own_prefixes_seen(self, prefixes, now: float) -> None:
        """Our LSA from before this agent restarted came back from a neighbour:
        while we relearn (no deletes yet), keep its prefixes for one lease."""
        if not self.fib_deletes_allowed:
            self.gateway.adopt(prefixes, now, self._pod_mac)

    def _pod_mac(self, port: int) -> str | None:
        nb = self.topo.neighbour_on(self.name, port)
        return self.topo.mac(nb, 0) if nb is not None and self.topo.kind(nb) == "pod" else None

    # -- switch session ------------------------------------------------------
    def connect(self, deadline_s: float | None = None) -> None:
        """(Re)connect and make the switch ready: pipeline, base tables."""
        t0 = time.monotonic()
        backoff = 0.05
        while not self.stop_event.is_set():
            try:
                sw = SwitchConnection(self.name, self.grpc_addr, self.device_id,
                            election_id=AGENT_ELECTION_ID).connect(timeout=1.0)
                break
            except SwitchError as exc:
                if deadline_s is not None and time.monotonic() - t0 > deadline_s:
                    raise
                log.info("switch not reachable yet (%s); retrying", exc)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 1.0)
        else:
            return
        fresh = False
        try:
            sw.fetch_p4info()
            if {t.preamble.name for t in sw.p4info.tables} != N.TABLES:
                raise PipelineError(self.name, "a different pipeline")
        except PipelineError:
            log.info("pushing pipeline")
            with self.connect_gate:
                self._push_pipeline(sw)
            fresh = True
        self._ensure_base(sw)
        self.sw = sw
        # The grace period for relearning runs from here, not from the
        # process's start: a restart on a loaded machine could spend most of it
        # importing and connecting, and then give up its own old prefixes
        # (adopt) before its neighbours had sent them back.
        self.started = time.monotonic()
        self.fib_cache = self.src_cache = None   # read the switch's tables on the next write
        self.fib_rib_version = -1          # force a FIB write
        if fresh:
            self.fib_deletes_allowed = True
            self.policies.forget()
        elif not self.fib_deletes_allowed:
            with self.lock:                    # a restart: no transit until relearned
                self.router.set_overload(True, time.monotonic())
        self.counters["switch_connects"] += 1
        log.info("connected to %s (%s pipeline)", self.grpc_addr, "new" if fresh else "existing")

    def _push_pipeline(self, sw: SwitchConnection) -> None:
        """SetForwardingPipelineConfig, tried again while it fails: a BMv2 still
        starting on a loaded machine refused it once in 64 ("Error when trying
        to assign device") and that ended the agent."""
        backoff = 0.2
        while True:
            try:
                sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
                return
            except PipelineError as exc:
                if self.stop_event.is_set():
                    raise
                self.counters["pipeline_push_failed"] += 1
                log.warning("%s; trying again in %.1f s", exc, backoff)
                self.stop_event.wait(backoff)
                backoff = min(2 * backoff, 2.0)

    def _ensure_base(self, sw: SwitchConnection) -> None:
        """Switch id, port roles and MACs; on an existing pipeline (agent
        restart) the entries are there already: those inserts become modifies."""
        ports = {p: (pt.role, pt.mac) for p, pt in self.router.ports.items()}
        ups = base_entries(sw, self.device_id, ports)
        try:
            sw.write(ups)
        except WriteError as exc:
            retry = [(MODIFY, ups[f.index][1]) for f in exc.failures
                     if f.code == "ALREADY_EXISTS"]
            if len(retry) != len(exc.failures):
                raise
            sw.write(retry)
        sw.write(copp_updates(sw, self.topo.copp,
                              [p for p, (role, _m) in ports.items() if role == "pod"]))

    # -- FIB -------------------------------------------------------------------
    def may_delete(self, now: float) -> bool:
        """After a restart, stale-looking entries are kept until the LSDB is
        relearned: every neighbour up, nothing unacknowledged, no new LSA for
        a moment (or the grace period is over)."""
        r = self.router
        return (r.synced and now - r.last_change > QUIET_S) or now - self.started > self.grace_s

    def write_fib(self) -> None:
        """The FIB, and the source-name table (what each pod port may speak as)
        from the prefixes this SG holds, in one batch."""
        with self.lock:
            version = self.router.rib_version
            desired = self.router.routes()
            held = [(p, port) for p, (port, _m) in self.router.local_prefixes.items()
                    if port != CPU_PORT]
        fib, guard = Fib(self.sw), SourceGuard(self.sw)
        # Only this agent writes the FIB: what it wrote last is what the switch
        # holds. Read it back only after a (re)connect or a failed write.
        current = self.fib_cache if self.fib_cache is not None else fib.read()
        current_src = self.src_cache if self.src_cache is not None else guard.read()
        want = {names.prefix_key(p): r for p, r in desired.items()}
        want_src = guard.wanted(held)
        if not self.fib_deletes_allowed:
            want = {**{k: r for k, r in current.items() if k not in want}, **want}
            want_src |= current_src
        ups = guard.diff(current_src, want_src) + fib.diff(current, want)
        self.fib_cache = self.src_cache = None
        self.sw.write(ups)
        fiblog.log(self.name, current, want)        # no-op unless DMSC_FIBLOG names a file
        self.fib_cache, self.src_cache = want, want_src
        self.fib_rib_version = version
        if ups:
            self.fib_version += 1
            self.fib_written_at = time.monotonic()
            self.counters["fib_writes"] += 1
            log.info("FIB v%d: %d updates (%s)", self.fib_version, len(ups),
                     "full sync" if self.fib_deletes_allowed else "no deletes yet")

    # -- threads ---------------------------------------------------------------
    def run(self) -> None:
        """Two threads: this one runs the protocol (packet-in, timers, hellos,
        LSAs), so that adjacencies never wait for a P4Runtime write; the FIB
        writer turns each new RIB into batched writes."""
        if self.cpu_intf:
            from controller.agent.cpuport import CpuPort
            self.cpu = CpuPort(self.cpu_intf)
        self.connect()
        writer = threading.Thread(target=self._fib_loop, name=f"{self.name}:fib-writer", daemon=True)
        writer.start()
        if self.gateway is not None:
            self.gateway.start()
        reporter = None
        if self.scsc_addr:
            reporter = threading.Thread(target=self._counters_loop, name=f"{self.name}:counters", daemon=True)
            reporter.start()
        prober = None
        if self.prober is not None:
            prober = threading.Thread(target=self._probe_loop, name=f"{self.name}:prober", daemon=True)
            prober.start()
        try:
            self._protocol_loop()
        finally:
            self.stop_event.set()
            self.fib_event.set()
            writer.join(5)
            if self.gateway is not None:
                self.gateway.join(5)
            if prober is not None:
                prober.join(5)
            if reporter is not None:
                reporter.join(5)
            if self.sw is not None:
                self.sw.close()
            if self.cpu is not None:
                self.cpu.close()
            self._carrier.close()

    def _protocol_loop(self) -> None:
        next_carrier = 0.0
        pin = None
        while not self.stop_event.is_set():
            try:
                with self.lock:
                    now = time.monotonic()
                    # what arrived first (so a late loop never declares a
                    # neighbour dead whose hellos are waiting in the queue)
                    while pin is not None:
                        self._on_packet_in(pin)
                        pin = self._packet_in(0)
                    if now >= next_carrier:
                        self._poll_carrier(now)
                        next_carrier = now + CARRIER_POLL_S
                    if self.gateway is not None:
                        self.gateway.expire(now)
                    self.router.tick(now)
                    out, self.router.outbox = self.router.outbox, []
                    rib_changed = self.router.rib_version != self.fib_rib_version
                    wait = min(self.router.next_deadline(), next_carrier) - time.monotonic()
                for port, frame in out:
                    self.packet_out(frame, egress_port=port)
                if rib_changed or (not self.fib_deletes_allowed):
                    self.fib_event.set()
                pin = self._packet_in(min(max(wait, 0.001), CARRIER_POLL_S))
            except SwitchConnectionError as exc:
                pin = None
                self._reconnect(exc)

    def _packet_in(self, timeout: float):
        """The next punted frame (None: ``timeout`` passed or woken); raises
        SwitchConnectionError once the P4Runtime session is gone, in either mode."""
        if self.cpu is None:
            return self.sw.packet_in(timeout=timeout)
        self.sw.packet_in(timeout=0)          # nothing comes here: it only notices a loss
        return self.cpu.packet_in(timeout=timeout)

    def _poll_carrier(self, now: float) -> None:
        for p, intf in self.intfs.items():
            up = self._carrier(intf)
            if up is None:
                self.counters["carrier_unreadable"] += 1
                if intf not in self._carrier_unreadable:
                    self._carrier_unreadable.add(intf)
                    log.warning("carrier of %s (port %d) cannot be read: hellos alone "
                                "detect failures on it", intf, p)
                continue
            self.router.on_port_status(p, up, now)

    def _reconnect(self, exc) -> None:
        log.warning("switch connection lost (%s): reconnecting", exc)
        self.counters["switch_disconnects"] += 1
        with self.fib_lock:
            if self.sw is not None:
                self.sw.close()
            self.sw = None
            self.connect()
        self.fib_event.set()

    @contextlib.contextmanager
    def _survives(self, thread: str):
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

    def _fib_loop(self) -> None:
        while not self.stop_event.is_set():
            self.fib_event.wait(0.2)
            self.fib_event.clear()
            if self.stop_event.is_set():
                return
            with self.fib_lock, self._survives("fib_writer"):
                if self.sw is None:
                    continue
                try:
                    if not self.fib_deletes_allowed and self.may_delete(time.monotonic()):
                        self.fib_deletes_allowed = True
                        self.fib_rib_version = -1        # one full sync now
                        self._lift_overload = True
                    if self.router.rib_version != self.fib_rib_version:
                        self.write_fib()
                    if self._lift_overload and self.router.rib_version == self.fib_rib_version:
                        self._lift_overload = False      # the full FIB is written: transit again
                        with self.lock:
                            self.router.set_overload(False, time.monotonic())
                        self.wake()
                    self.policies.expire()
                except SwitchConnectionError as exc:
                    log.warning("FIB write: switch connection lost (%s)", exc)
                    self.fib_rib_version = -1            # the protocol loop reconnects
                except (WriteError, SwitchError) as exc:
                    log.error("FIB write failed: %s", exc)
                    self.counters["fib_write_errors"] += 1
                    self.fib_rib_version = -1
                    self.stop_event.wait(0.1)

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
            self._answer_no_route(pin.payload)

    def _on_local(self, raw: bytes) -> None:
        """A frame addressed to this switch: probe replies for the prober.
        Called under the agent's lock; takes the prober's lock inside it (the
        one order both threads use)."""
        try:
            f = codec.decode(raw)
        except ValueError:
            self.counters["local_malformed"] += 1
            return
        if f.type == defs.TYPE_PROBE_REPLY and self.prober is not None:
            with self.prober_lock:
                self.prober.on_reply(f, time.monotonic())
            return
        self.counters[f"local_ignored_{defs.TYPE_NAMES.get(f.type, f.type)}"] += 1

    # -- probes and telemetry ---------------------------------------------------
    def _probe_targets(self) -> list[str]:
        """The instances of every replicated service in the RIB: the ones the
        SCSC can choose between (a service with one instance has no other
        place to send its traffic, and probing it would only cost)."""
        with self.lock:
            insts = [p for p in self.router.rib if not names.is_reserved(p)
                     and len(names.components(p)) >= 2]
        by_service = collections.Counter(names.components(p)[0] for p in insts)
        return [p for p in insts if by_service[names.components(p)[0]] > 1
                and (not self.probe_services
                     or "/" + names.components(p)[0] in self.probe_services)]

    def _probe_loop(self) -> None:
        """Probes out every interval; a telemetry report to the SCSC after each round."""
        stub = None
        if self.scsc_addr:
            channel = grpc.insecure_channel(self.scsc_addr)
            stub = scsc_grpc.ScscStub(channel)
        last_round = -1.0
        while not self.stop_event.wait(0.005):
            with self._survives("prober"):
                self._probe_round(stub, last_round)
                last_round = self.prober.next_round

    def _probe_round(self, stub, last_round: float) -> None:
        """The probes due now out; a telemetry report after a new round."""
        sw = self.sw
        if sw is None:
            return
        now = time.monotonic()
        targets = self._probe_targets()      # agent lock first, never inside the prober's
        with self.prober_lock:
            frames = self.prober.due(now, targets)
            new_round = self.prober.next_round != last_round
        try:
            for frame in frames:
                self.packet_out(frame, flags=defs.PKTOUT_ROUTE)
        except SwitchError as exc:
            log.info("probe not sent: %s", exc)
        if stub is not None and new_round and frames:
            self._report(stub)

    def _counters_loop(self) -> None:
        """Every COUNTERS_S, what this switch can add for the SCSC: the packets
        each FIB entry matched (SRs report this and nothing else)."""
        stub = scsc_grpc.ScscStub(grpc.insecure_channel(self.scsc_addr))
        while not self.stop_event.wait(COUNTERS_S):
            with self._survives("counters"):
                self._counters_round(stub)

    def _counters_round(self, stub) -> None:
        """One report of the packets each FIB entry matched."""
        sw = self.sw
        if sw is None:
            return
        try:
            with self.fib_lock:
                counts = Fib(sw).counters()
        except SwitchError as exc:
            log.info("FIB counters unreadable: %s", exc)
            return
        idx = names.NameIndex()
        with self.lock:
            for p in self.router.rib:
                try:
                    idx.add(p)
                except names.InvalidName:
                    pass
        t = scsc_pb.Telemetry(sg=self.name)
        for k, (pkts, _b) in counts.items():
            t.fib_packets[idx.lookup(*k)] = pkts
        self._send(stub, t)

    def _send(self, stub, t) -> None:
        """Number, sign and send one report. One at a time: the SCSC refuses a
        sequence number that is not above the last it took from us."""
        try:
            with self.seq_lock:
                self.telemetry_seq += 1
                t.seq, t.sent_at = self.telemetry_seq, time.time()
                ack = stub.Report(sign(t, self.telemetry_key), timeout=0.5)
        except grpc.RpcError as exc:
            self.counters["telemetry_unsent"] += 1
            if self.counters["telemetry_unsent"] % 50 == 1:
                log.warning("SCSC at %s not answering (%s): telemetry not delivered",
                            self.scsc_addr, exc.code().name)
            return
        self.counters["telemetry_sent" if ack.ok else "telemetry_refused"] += 1
        if not ack.ok:
            log.warning("SCSC refused our telemetry: %s", ack.error)

    def _report(self, stub) -> None:
        t = scsc_pb.Telemetry(sg=self.name)
        now = time.monotonic()
        with self.prober_lock:
            for st in self.prober.stats.values():
                if not st.samples:
                    continue
                t.paths.add(instance=st.instance,
                            delay_ms=self.prober.delay_ms(st.instance, now) or 0.0,
                            jitter_ms=st.jitter_ms, loss=st.loss,
                            bandwidth_mbps=st.bandwidth_mbps or 0.0, path=st.path,
                            hop_us=st.hop_us, hop_qdepth=st.hop_qdepth, samples=st.samples)
        self._send(stub, t)

    def _answer_no_route(self, raw: bytes) -> None:
        """A request this switch has no route for gets an ERROR (no_route)
        routed back to its source, instead of silence. Only requests and
        probes are answered (never an error: no error storms), at most
        ``NO_ROUTE_PER_S`` per second."""
        try:
            pkt = codec.decode(raw)
        except ValueError:
            self.counters["no_route_malformed"] += 1
            return
        if pkt.type not in (defs.TYPE_REQUEST, defs.TYPE_PROBE) or not pkt.src_name:
            self.counters["no_route_not_answered"] += 1
            return
        if not self.no_route_limit.take():
            self.counters["no_route_rate_limited"] += 1
            return
        try:
            err = codec.error(pkt, names.switch_name(self.name), codec.STATUS_NO_ROUTE,
                              f"no route to {pkt.dst_name} at {self.name}")
        except names.InvalidName:
            self.counters["no_route_not_answered"] += 1
            return
        self.packet_out(err, flags=defs.PKTOUT_ROUTE)
        self.counters["no_route_answered"] += 1

    def packet_out(self, frame: bytes, **metadata: int) -> None:
        """A frame out through the switch: by the CPU-port interface when the
        agent has one, else as a P4Runtime packet-out."""
        if self.cpu is not None:
            self.cpu.packet_out(frame, metadata.get("egress_port", 0), metadata.get("flags", 0))
        else:
            self.sw.packet_out(frame, **metadata)

    # -- admin -----------------------------------------------------------------
    def wake(self) -> None:
        """The protocol loop acts now on a change made from another thread
        (an accepted prefix is originated at once, not at the next timer)."""
        sw = self.sw
        if sw is not None:
            sw.wake()
        cpu = self.cpu
        if cpu is not None:
            cpu.wake()

    def state(self) -> pb.AgentState:
        with self.lock:
            r = self.router
            now = time.monotonic()
            st = pb.AgentState(router=r.name, router_id=r.router_id, spf_runs=r.spf_runs,
                               fib_version=self.fib_version,
                               fib_written_at=self.fib_written_at)
            for p, nb in sorted(r.neighbors.items()):
                st.neighbors.add(router=nb.router, port=p, mac=nb.mac,
                                 state="up" if nb.two_way else "init",
                                 last_heard_age_s=now - nb.last_heard,
                                 dead_interval_ms=round(r.dead_interval(p) * 1000))
            for k in sorted(r.lsdb.entries):
                st.lsdb.append(r.lsdb.outgoing(k, now))
            for prefix, e in sorted(r.rib.items()):
                ent = st.rib.add(prefix=prefix, origins=list(e.origins), cost=e.cost)
                for h in sorted(e.hops):
                    mac = ""
                    if h.neighbor == spf.LOCAL and prefix in r.local_prefixes:
                        mac = r.local_prefixes[prefix][1]
                    elif h.port in r.neighbors:
                        mac = r.neighbors[h.port].mac
                    ent.next_hops.add(port=h.port, neighbor=h.neighbor, mac=mac)
            for k, v in r.counters.items():
                st.counters[k] = v
            if self.prober is not None:
                with self.prober_lock:
                    for k, v in self.prober.counters.items():
                        st.counters[k] = v
            if self.gateway is not None:
                for h in self.gateway.held.values():
                    st.held.add(prefix=h.prefix, port=h.port, key_id=h.key_id,
                                lease_left_s=min(h.expires - now, 1e9),
                                accepted_at=h.accepted_at, spa_ms=h.verdict_ms)
                st.pending = len(self.gateway.pending)
            return st


class AdminService(pb_grpc.AgentAdminServicer):
    def __init__(self, agent: Agent):
        self.agent = agent

    def GetState(self, request, context):
        return self.agent.state()

    def SetPolicies(self, request, context):
        return self.agent.policies.set(request)

    def GetPolicies(self, request, context):
        return self.agent.policies.view()

    def AcceptPrefix(self, request, context):
        """Operator override: a prefix accepted without the SPA (logged as such)."""
        gw = self.agent.gateway
        if gw is None:
            return pb.PrefixReply(ok=False, error=f"{self.agent.name} is not an SG")
        try:
            with self.agent.lock:
                gw.override(request.prefix, request.port, request.mac)
        except (ValueError, names.InvalidName) as exc:
            return pb.PrefixReply(ok=False, error=str(exc))
        self.agent.wake()
        return pb.PrefixReply(ok=True)

    def WithdrawPrefix(self, request, context):
        """Operator withdrawal of a held prefix (its pod's announcements or an override)."""
        gw = self.agent.gateway
        try:
            prefix = names.normalize(request.prefix)
        except names.InvalidName as exc:
            return pb.PrefixReply(ok=False, error=str(exc))
        with self.agent.lock:
            h = gw.held.get(prefix) if gw is not None else None
            if h is not None:
                gw._withdraw(h, time.monotonic(), "operator withdrawal")
                ok = True
            else:
                ok = self.agent.router.withdraw_prefix(prefix, time.monotonic())
        self.agent.wake()
        return pb.PrefixReply(ok=ok, error="" if ok else f"{request.prefix} was not accepted")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="DMSC SG/SR agent")
    ap.add_argument("--topo", required=True)
    ap.add_argument("--switch", required=True)
    ap.add_argument("--grpc-addr", required=True)
    ap.add_argument("--device-id", type=int, required=True)
    ap.add_argument("--admin-addr", required=True,
                    help="unix:/private/dir/NAME.sock (root only) or 127.0.0.1:<port>")
    ap.add_argument("--key-file", required=True, help="domain key for LSA/hello HMACs")
    ap.add_argument("--hello-ms", type=int, default=Config.hello_ms)
    ap.add_argument("--dead-ms", type=int, default=None, help="default: 3 hellos")
    ap.add_argument("--rxmt-ms", type=int, default=None,
                    help="first LSA retransmit (default: 2.5 hellos, at least 250 ms)")
    ap.add_argument("--grace-s", type=float, default=3.0)
    ap.add_argument("--spa", action="append", default=[], metavar="127.0.0.1:PORT",
                    help="an SPA address (repeatable: the next is used when one is down)")
    ap.add_argument("--lease-s", type=float, default=DEFAULT_LEASE_S,
                    help="lease of an accepted prefix; pods re-announce before it runs out")
    ap.add_argument("--scsc", help="the SCSC's address (127.0.0.1:PORT): telemetry goes there")
    ap.add_argument("--probe-ms", type=int, default=0,
                    help="an SG probes its targets this often (0: no probes)")
    ap.add_argument("--probe-service", action="append", default=[],
                    help="probe only this service's instances (repeatable; default: every "
                         "replicated service)")
    ap.add_argument("--cpu-intf",
                    help="the veth on the switch's CPU port (BMv2 -i 255@<its peer>, no "
                         "--cpu-port): packet I/O through it instead of the P4Runtime stream")
    ap.add_argument("--log-file")
    ap.add_argument("--log-level", default="INFO")
    return ap


class AgentArgsError(ValueError):
    """Agent arguments that cannot work (the message says why)."""


def build(a: argparse.Namespace, topo: Topology | None = None) -> tuple[Agent, grpc.Server]:
    """The agent and its admin server (started) from parsed arguments;
    ``topo`` saves loading the topology again when several agents share it."""
    try:
        warning = check_listen_addr(a.admin_addr)
    except ValueError as exc:
        raise AgentArgsError(f"--admin-addr {exc}") from None
    if warning:
        log.warning("%s", warning)
    topo = topo or Topology.load(a.topo)
    key = Path(a.key_file).read_bytes()
    agent = Agent(topo, a.switch, a.grpc_addr, a.device_id, key,
                  Config.for_hello(a.hello_ms, a.dead_ms, a.rxmt_ms), grace_s=a.grace_s,
                  spa_addrs=a.spa, lease_s=a.lease_s, scsc_addr=a.scsc, probe_ms=a.probe_ms,
                  probe_services=a.probe_service, cpu_intf=a.cpu_intf)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=3,
                                                    thread_name_prefix=f"{a.switch}:admin"),
                         options=EXCLUSIVE_PORT)
    pb_grpc.add_AgentAdminServicer_to_server(AdminService(agent), server)
    if not bind(server, a.admin_addr):
        raise AgentArgsError(f"admin address {a.admin_addr} cannot be bound (in use?)")
    server.start()
    return agent, server


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(filename=a.log_file, level=a.log_level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        agent, server = build(a)
    except AgentArgsError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop_event.set())
    log.info("agent %s starting (switch %s, admin %s)", a.switch, a.grpc_addr, a.admin_addr)
    try:
        agent.run()
    finally:
        server.stop(grace=None)
        log.info("agent stopping; counters %s", dict(agent.counters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
