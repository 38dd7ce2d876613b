"""The central controller process: one for the whole network, the only thing
that programs the switches in the centralized mode.

    python -m controller.central --topo topologies/fig2.yaml \\
        --switches runs/x/central/switches.json --admin-addr 127.0.0.1:50100 \\
        --key-file runs/x/domain.key --spa 127.0.0.1:50200

Threads:

* one **session** thread per switch (:class:`Session`): connects over
  P4Runtime (election id 0,100, as an agent), pushes the pipeline and base
  tables when the switch has none, then reads packet-ins and hands them to
  the main loop; when the stream breaks it reports the switch gone and
  reconnects with back-off;
* the **main loop** (:meth:`Controller._main_loop`): discovery frames out of
  every core port every hello interval, packet-ins (discovery frames into
  the view, pods' announcements to the SG's gateway, no-route answers),
  carrier, dead links, leases. It never waits for a FIB write;
* the **FIB writer**: when the view changed, SPF for every switch
  (:meth:`controller.central.network_view.View.fibs`), each FIB diffed against what
  the switch holds and written in one batched Write per switch, the switches
  in parallel;
* one **gateway** worker per SG (controller/agent/gateway.py, the agents'
  code, unchanged): the SPA check of announcements over gRPC, leases,
  revocation rechecks, acks and nacks to the pods.

Restarts: a switch whose session breaks leaves the graph at once (the others'
FIBs are recomputed) and is rewritten whole when it is back. A restarted
controller finds the switches' FIBs in place: for ``--grace-s`` it only adds
and changes entries, never deletes, while it relearns links (one dead
interval) and its pods re-announce (about half their lease); then a full sync
removes what is stale. While it is down, the switches forward with the FIBs
they have: nothing is repaired.

SIGTERM stops it and leaves the switches forwarding.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import queue
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from controller.agent.gateway import DEFAULT_LEASE_S, Gateway
from controller.agent.no_route_replies import NoRouteReplies
from controller.agent.port_carrier import carrier
from controller.agent.switch_session import AGENT_ELECTION_ID
from controller.central.network_view import SwitchConf, View, discovery_frame, switch_confs
from controller.proto import central_pb2 as cpb
from controller.proto import central_pb2_grpc as cpb_grpc
from controller.proto import routing_pb2 as pb
from controller.routing import spf
from controller.routing.router import Backoff
from controller.spa.spa_client import SpaClient
from controller import keys
from controller.switch import fiblog
from controller.switch import p4names as N
from controller.switch.artifacts import BMV2_JSON, P4INFO
from controller.switch.p4rt import (MODIFY, PipelineError, SwitchConnection,
                                    SwitchConnectionError, SwitchError, WriteError)
from controller.switch.tables import Fib, SourceGuard, base_entries, copp_updates
from topologies.topo import Topology
from traffic.wire import defs, names
from controller.rpc import EXCLUSIVE_PORT, bind, check_listen_addr

log = logging.getLogger("dmsc.central")

CARRIER_POLL_S = 0.1
SPF_HOLD_MS, SPF_MAX_MS = 20, 1_000     # recomputation hold-down under churn (as the agents')
WRITERS = 8                              # switches written in parallel


class Session:
    """One switch's P4Runtime session, kept up by its own thread."""

    def __init__(self, ctl: "Controller", conf: SwitchConf, grpc_addr: str, device_id: int):
        self.ctl = ctl
        self.conf = conf
        self.name = conf.name
        self.grpc_addr = grpc_addr
        self.device_id = device_id
        self.sw: SwitchConnection | None = None
        self.write_lock = threading.Lock()     # one FIB write at a time on this switch
        self.fib_cache: dict | None = None     # what we last wrote (None: read it first)
        self.src_cache: set | None = None      # the same for the source-name table
        self.fib_version = 0
        self.fib_written_at = 0.0
        self.counters: collections.Counter = collections.Counter()
        self.no_route = NoRouteReplies(self.name, self.counters)
        self.thread = threading.Thread(target=self._run, name=f"session-{self.name}",
                                       daemon=True)

    def _connect(self) -> tuple[SwitchConnection, bool]:
        sw = SwitchConnection(self.name, self.grpc_addr, self.device_id,
                              election_id=AGENT_ELECTION_ID).connect(timeout=1.0)
        try:
            fresh = False
            try:
                sw.fetch_p4info()
                if {t.preamble.name for t in sw.p4info.tables} != N.TABLES:
                    raise PipelineError(self.name, "a different pipeline")
            except PipelineError:
                sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
                fresh = True
            ports = {p: (pt.role, pt.mac) for p, pt in self.conf.ports.items()}
            ups = base_entries(sw, self.device_id, ports)
            try:
                sw.write(ups)
            except WriteError as exc:      # an existing pipeline: the entries are there
                retry = [(MODIFY, ups[f.index][1]) for f in exc.failures
                         if f.code == "ALREADY_EXISTS"]
                if len(retry) != len(exc.failures):
                    raise
                sw.write(retry)
            sw.write(copp_updates(sw, self.conf.copp,
                                  [p for p, (role, _m) in ports.items() if role == "pod"]))
        except BaseException:
            sw.close()
            raise
        return sw, fresh

    def _run(self) -> None:
        stop = self.ctl.stop_event
        backoff = 0.05
        while not stop.is_set():
            try:
                sw, fresh = self._connect()
            except SwitchError as exc:
                self.counters["connect_failed"] += 1
                if self.counters["connect_failed"] % 20 == 1:
                    log.info("%s not reachable (%s); retrying", self.name, exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            with self.write_lock:
                self.sw, self.fib_cache, self.src_cache = sw, None, None
            self.counters["switch_connects"] += 1
            log.info("%s connected at %s (%s pipeline)", self.name, self.grpc_addr,
                     "new" if fresh else "existing")
            self.ctl.events.put(("up", self.name, None))
            try:
                while not stop.is_set():
                    pin = sw.packet_in(timeout=0.5)
                    if pin is not None:
                        self.ctl.events.put(("pin", self.name, pin))
            except SwitchConnectionError as exc:
                log.warning("%s: session lost (%s)", self.name, exc)
                self.counters["switch_disconnects"] += 1
                self.ctl.events.put(("down", self.name, None))
            with self.write_lock:
                self.sw, self.fib_cache, self.src_cache = None, None, None
            sw.close()

    def write(self, desired: dict, deletes: bool, src: set = frozenset()) -> int:
        """Make the switch's FIB ``desired`` ({(key, plen): Route}) and its
        source-name table ``src`` ({(port, key, plen)}); without ``deletes``
        keep entries it holds that are not desired. Returns the number of
        updates written."""
        with self.write_lock:
            sw = self.sw
            if sw is None:
                return 0
            fib, guard = Fib(sw), SourceGuard(sw)
            current = self.fib_cache if self.fib_cache is not None else fib.read()
            current_src = self.src_cache if self.src_cache is not None else guard.read()
            want = desired if deletes else \
                {**{k: r for k, r in current.items() if k not in desired}, **desired}
            want_src = set(src) if deletes else set(src) | current_src
            ups = guard.diff(current_src, want_src) + fib.diff(current, want)
            self.fib_cache = self.src_cache = None
            sw.write(ups)
            fiblog.log(self.name, current, want)    # no-op unless DMSC_FIBLOG names a file
            self.fib_cache, self.src_cache = want, want_src
            if ups:
                self.fib_version += 1
                self.fib_written_at = time.monotonic()
                self.counters["fib_writes"] += 1
            return len(ups)


class SgHandle:
    """What the agents' Gateway asks of its agent, for one SG of the central
    controller: the lock, the stop event, the switch session (answers to the
    pod go out as packet-outs), counters, and a ``router`` whose
    accept_prefix / withdraw_prefix change the central view."""

    def __init__(self, ctl: "Controller", session: Session):
        self.ctl = ctl
        self.session = session
        self.name = session.name
        self.counters = session.counters
        self.router = self

    # Gateway's agent interface
    @property
    def lock(self):
        return self.ctl.lock

    @property
    def stop_event(self):
        return self.ctl.stop_event

    @property
    def sw(self):
        return self.session.sw

    def wake(self) -> None:
        self.ctl.wake()

    # Gateway's router interface
    @property
    def ports(self):
        return self.session.conf.ports

    def accept_prefix(self, prefix: str, port: int, mac: str, now: float) -> None:
        self.ctl.view.accept_prefix(self.name, prefix, port, mac, now)

    def withdraw_prefix(self, prefix: str, now: float) -> bool:
        return self.ctl.view.withdraw_prefix(self.name, prefix, now)

    def set_local_sharers(self, prefix: str, sharers: dict[int, str], now: float) -> None:
        self.ctl.view.set_local_sharers(self.name, prefix, sharers, now)


class Controller:
    def __init__(self, confs: dict[str, SwitchConf], addrs: dict[str, tuple[str, int]],
                 key: bytes, *, hello_ms: int = 80, dead_ms: int = 240, grace_s: float = 3.0,
                 spa_addrs=(), lease_s: float = DEFAULT_LEASE_S, carrier_fn=carrier,
                 clock=time.monotonic):
        self.key = keys.derive(key, keys.ROUTING)      # ``key``: the domain secret
        self.hello_ms, self.dead_ms = hello_ms, dead_ms
        self.grace_s = grace_s
        self.clock = clock
        self.carrier = carrier_fn
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        self.fib_event = threading.Event()
        self.events: queue.Queue = queue.Queue()
        self.view = View(confs, self.key, hello_ms / 1000, dead_ms / 1000)
        self.sessions = {n: Session(self, confs[n], *addrs[n]) for n in sorted(confs)}
        self.gateways: dict[str, Gateway] = {}
        for n, s in self.sessions.items():
            if s.conf.kind == "sg":
                self.gateways[n] = Gateway(SgHandle(self, s),
                                           SpaClient(spa_addrs) if spa_addrs else None,
                                           lease_s=lease_s)
        self.counters: collections.Counter = collections.Counter()
        self.started = clock()
        self.deletes_allowed = grace_s <= 0
        self.msg_id = 0
        self.spf_runs = 0
        self.fib_rounds = 0
        self.fib_written_at = 0.0
        self.written_version = -1          # the view version the switches hold
        self.ribs: dict[str, dict[str, spf.RibEntry]] = {}
        self.dirty: set[str] = set()       # switches to rewrite whatever the version
        self._spf_backoff = Backoff(SPF_HOLD_MS, SPF_MAX_MS)
        self._unreadable: set[str] = set()

    # -- running -----------------------------------------------------------------
    def run(self) -> None:
        for s in self.sessions.values():
            s.thread.start()
        for gw in self.gateways.values():
            gw.start()
        writer = threading.Thread(target=self._fib_loop, name="fib-writer", daemon=True)
        writer.start()
        try:
            self._main_loop()
        finally:
            self.stop_event.set()
            self.fib_event.set()
            self.wake()
            writer.join(5)
            for gw in self.gateways.values():
                gw.join(5)
            for s in self.sessions.values():
                s.thread.join(2)
                if s.sw is not None:
                    s.sw.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake()

    def wake(self) -> None:
        """The main loop acts now (a change made from another thread)."""
        self.events.put(None)
        self.fib_event.set()

    def _main_loop(self) -> None:
        hello = self.hello_ms / 1000
        next_hello = next_carrier = self.clock()
        while not self.stop_event.is_set():
            with self.lock:
                wait = min(next_hello, next_carrier, self.view.next_deadline()) - self.clock()
            try:
                ev = self.events.get(timeout=min(max(wait, 0.001), hello))
            except queue.Empty:
                ev = None
            out: list[tuple[str, bytes, dict]] = []
            with self.lock:
                now = self.clock()
                while True:
                    if ev is not None:
                        self._on_event(ev, now, out)
                    try:
                        ev = self.events.get_nowait()
                    except queue.Empty:
                        break
                if now >= next_carrier:
                    self._poll_carrier(now)
                    for gw in self.gateways.values():
                        gw.expire(now)           # leases: a tenth of a second is precise enough
                    next_carrier = now + CARRIER_POLL_S
                if now >= next_hello:
                    for name in sorted(self.view.connected):
                        out += self._discovery(name)
                    next_hello = now + hello
                self.view.tick(now)
                if not self.deletes_allowed and now - self.started >= self.grace_s:
                    self.deletes_allowed = True
                    self.dirty |= set(self.sessions)       # a full sync: remove what is stale
                    log.info("grace over: FIB entries nothing routes are deleted from now on")
                if self.view.version != self.written_version or self.dirty:
                    self.fib_event.set()
            self._send(out)

    def _send(self, out) -> None:
        for name, frame, md in out:
            sw = self.sessions[name].sw
            if sw is None:
                continue
            try:
                sw.packet_out(frame, **md)
            except SwitchError as exc:
                self.counters["packet_out_failed"] += 1
                log.debug("%s: packet-out failed: %s", name, exc)

    def _discovery(self, name: str) -> list:
        conf = self.view.switches[name]
        out = []
        for port, p in sorted(conf.ports.items()):
            if p.role == "core" and p.up:
                self.msg_id = (self.msg_id + 1) & 0xFFFFFFFF
                out.append((name, discovery_frame(conf, port, self.key, self.msg_id,
                                                  self.hello_ms, self.dead_ms),
                            {"egress_port": port}))
        self.counters["discovery_sent"] += len(out)
        return out

    def _on_event(self, ev, now: float, out: list) -> None:
        kind, name, pin = ev
        if kind == "up":
            self.view.switch_up(name, now)
            self.dirty.add(name)
            out += self._discovery(name)           # its links at once, not at the next round
        elif kind == "down":
            self.view.switch_down(name, now)
        elif kind == "pin":
            self._on_packet_in(name, pin, now, out)

    def _on_packet_in(self, name: str, pin, now: float, out: list) -> None:
        reason = pin.metadata.get(N.PACKET_IN_REASON)
        port = pin.metadata.get(N.PACKET_IN_INGRESS_PORT, 0)
        if reason == defs.PUNT_CONTROL:
            self.view.on_discovery(name, port, pin.payload, now)
            return
        s = self.sessions[name]
        s.counters[f"punt_{defs.PUNT_REASONS.get(reason, reason)}"] += 1
        if reason == defs.PUNT_ANNOUNCE:
            gw = self.gateways.get(name)
            if gw is not None:
                gw.on_frame(port, pin.payload)
            else:
                s.counters["announce_refused_not_an_sg"] += 1
        elif reason == defs.PUNT_NO_ROUTE:
            frame = s.no_route.answer(pin.payload)     # as an agent answers
            if frame is not None:
                out.append((name, frame, {"flags": defs.PKTOUT_ROUTE}))
        # PUNT_LOCAL: frames to an SG's own name (probe replies): no prober here, counted

    def _poll_carrier(self, now: float) -> None:
        for name in self.view.connected:
            conf = self.view.switches[name]
            for port, intf in conf.intfs.items():
                if conf.ports[port].role != "core":
                    continue
                up = self.carrier(intf)
                if up is None:
                    self.counters["carrier_unreadable"] += 1
                    if intf not in self._unreadable:
                        self._unreadable.add(intf)
                        log.warning("carrier of %s cannot be read: discovery alone detects "
                                    "failures on it", intf)
                    continue
                self.view.port_status(name, port, up, now)

    # -- FIBs ------------------------------------------------------------------------
    def compute(self) -> tuple[int, dict[str, dict], dict[str, set]]:
        """SPF for every connected switch: (view version, {switch: {(key, plen):
        Route}}, {switch: its source-name table {(port, key, plen)}})."""
        with self.lock:
            version = self.view.version
            fibs, ribs = self.view.fibs()
            held = {s: [(p, port) for p, (port, _m) in self.view.prefixes.get(s, {}).items()]
                    for s in fibs}
            self.ribs = ribs
            self.spf_runs += 1
        return (version, {s: {names.prefix_key(p): r for p, r in f.items()}
                          for s, f in fibs.items()},
                {s: SourceGuard.wanted(h) for s, h in held.items()})

    def write_fibs(self, pool: futures.Executor | None = None) -> int:
        """Compute and write every switch's FIB; returns the updates written."""
        with self.lock:
            dirty, self.dirty = self.dirty, set()
            deletes = self.deletes_allowed
        version, fibs, srcs = self.compute()
        targets = [s for s in fibs if s in dirty or version != self.written_version]
        def one(name):
            return self.sessions[name].write(fibs[name], deletes, srcs[name])
        results = {}
        errors = {}
        calls = {n: (pool.submit(one, n) if pool else None) for n in targets}
        for n, fut in calls.items():
            try:
                results[n] = fut.result() if fut is not None else one(n)
            except SwitchConnectionError as exc:
                errors[n] = exc               # the session thread reconnects and marks it dirty
            except (WriteError, SwitchError) as exc:
                log.error("FIB write to %s failed: %s", n, exc)
                self.counters["fib_write_errors"] += 1
                errors[n] = exc
        with self.lock:
            self.dirty |= set(errors)
            self.written_version = version
        total = sum(results.values())
        if total:
            self.fib_rounds += 1
            self.fib_written_at = time.monotonic()
            log.info("FIBs v%d: %d updates on %d switches (%s)", version, total,
                     sum(1 for v in results.values() if v),
                     "full sync" if deletes else "no deletes yet")
        return total

    def _fib_loop(self) -> None:
        with futures.ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="fib") as pool:
            while not self.stop_event.is_set():
                self.fib_event.wait(0.2)
                self.fib_event.clear()
                if self.stop_event.is_set():
                    return
                with self.lock:
                    due = self.view.version != self.written_version or self.dirty
                if not due:
                    continue
                wait = self._spf_backoff.ready_at - self.clock()
                if wait > 0 and self.stop_event.wait(wait):
                    return
                self._spf_backoff.served(self.clock())
                try:
                    self.write_fibs(pool)
                except Exception:        # a bug must not end the writer: log it, count it
                    self.counters["fib_loop_errors"] += 1
                    log.exception("FIB writer: unexpected error")
                    self.stop_event.wait(0.1)
                if self.dirty:
                    self.fib_event.set()
                    self.stop_event.wait(0.05)

    # -- inspection -------------------------------------------------------------------
    def state(self) -> cpb.CentralState:
        now = self.clock()
        with self.lock:
            st = cpb.CentralState(spf_runs=self.spf_runs, view_version=self.view.version,
                                  fib_rounds=self.fib_rounds, fib_written_at=self.fib_written_at,
                                  deletes_allowed=self.deletes_allowed, started_at=self.started)
            st.disconnected.extend(sorted(set(self.sessions) - self.view.connected))
            for ln in sorted(self.view.links, key=lambda x: (x.a, x.a_port)):
                st.links.add(a=ln.a, a_port=ln.a_port, b=ln.b, b_port=ln.b_port, cost=ln.cost)
            for k, v in (self.counters + self.view.counters).items():
                st.counters[k] = v
            for name, s in self.sessions.items():
                a = st.switches.add(router=name, router_id=s.device_id,
                                    fib_version=s.fib_version, fib_written_at=s.fib_written_at,
                                    spf_runs=self.spf_runs)
                for ln in self.view.links:
                    for me, mp, nb, np_ in ((ln.a, ln.a_port, ln.b, ln.b_port),
                                            (ln.b, ln.b_port, ln.a, ln.a_port)):
                        if me == name:
                            h = self.view.heard.get((me, mp))
                            a.neighbors.add(router=nb, port=mp, state="up",
                                            mac=self.view.switches[nb].ports[np_].mac,
                                            last_heard_age_s=now - h.at if h else 0.0,
                                            dead_interval_ms=self.dead_ms)
                for prefix, e in sorted(self.ribs.get(name, {}).items()):
                    ent = a.rib.add(prefix=prefix, origins=list(e.origins), cost=e.cost)
                    for hop in sorted(e.hops):
                        ent.next_hops.add(port=hop.port, neighbor=hop.neighbor)
                for k, v in s.counters.items():
                    a.counters[k] = v
                gw = self.gateways.get(name)
                if gw is not None:
                    for h in gw.held.values():
                        a.held.add(prefix=h.prefix, port=h.port, key_id=h.key_id,
                                   lease_left_s=min(h.expires - now, 1e9),
                                   accepted_at=h.accepted_at, spa_ms=h.verdict_ms)
                    a.pending = len(gw.pending)
            return st

    def override(self, sg: str, prefix: str, port: int, mac: str) -> None:
        """Operator override: a prefix accepted on ``sg`` without the SPA."""
        gw = self.gateways.get(sg)
        if gw is None:
            raise ValueError(f"{sg} is not an SG of this controller")
        with self.lock:
            gw.override(prefix, port, mac)
        self.wake()

    def withdraw(self, sg: str, prefix: str) -> bool:
        gw = self.gateways.get(sg)
        if gw is None:
            raise ValueError(f"{sg} is not an SG of this controller")
        prefix = names.normalize(prefix)
        with self.lock:
            h = gw.held.get(prefix)
            if h is not None:
                gw._withdraw(h, self.clock(), "operator withdrawal")
                ok = True
            else:
                ok = self.view.withdraw_prefix(sg, prefix, self.clock())
        self.wake()
        return ok


class AdminService(cpb_grpc.CentralAdminServicer):
    def __init__(self, ctl: Controller):
        self.ctl = ctl

    def GetState(self, request, context):
        return self.ctl.state()

    def AcceptPrefix(self, request, context):
        try:
            self.ctl.override(request.sg, request.prefix, request.port, request.mac)
        except (ValueError, names.InvalidName) as exc:
            return pb.PrefixReply(ok=False, error=str(exc))
        return pb.PrefixReply(ok=True)

    def WithdrawPrefix(self, request, context):
        try:
            ok = self.ctl.withdraw(request.sg, request.prefix)
        except (ValueError, names.InvalidName) as exc:
            return pb.PrefixReply(ok=False, error=str(exc))
        return pb.PrefixReply(ok=ok, error="" if ok else f"{request.prefix} was not accepted")


def load_switches(path) -> dict[str, tuple[str, int]]:
    """{name: (grpc_addr, device_id)} from a JSON file shaped as
    ``{"sg1": {"grpc_addr": "127.0.0.1:50001", "device_id": 1}, ...}`` (the
    ``switches`` part of a run's network.json has that shape too)."""
    data = json.loads(Path(path).read_text())
    data = data.get("switches", data)
    try:
        return {n: (str(v["grpc_addr"]), int(v["device_id"])) for n, v in data.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: every switch needs grpc_addr and device_id ({exc})") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="DMSC central controller (the centralized "
                                             "baseline: one process programs every switch)")
    ap.add_argument("--topo", required=True, help="each switch's own ports, roles and MACs")
    ap.add_argument("--switches", required=True,
                    help="JSON {switch: {grpc_addr, device_id}}: the switches it manages")
    ap.add_argument("--admin-addr", required=True,
                    help="unix:/private/dir/central.sock (root only) or 127.0.0.1:<port>")
    ap.add_argument("--key-file", required=True, help="domain key for discovery frames' HMACs")
    ap.add_argument("--hello-ms", type=int, default=80, help="discovery interval")
    ap.add_argument("--dead-ms", type=int, default=None, help="default: 3 intervals")
    ap.add_argument("--grace-s", type=float, default=3.0,
                    help="after a start, no FIB entry is deleted for this long (relearning)")
    ap.add_argument("--spa", action="append", default=[], metavar="127.0.0.1:PORT")
    ap.add_argument("--lease-s", type=float, default=DEFAULT_LEASE_S)
    ap.add_argument("--log-file")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    logging.basicConfig(filename=a.log_file, level=a.log_level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        warning = check_listen_addr(a.admin_addr)
    except ValueError as exc:
        print(f"central: --admin-addr {exc}", file=sys.stderr)
        return 2
    if warning:
        log.warning("%s", warning)
    topo = Topology.load(a.topo)
    try:
        addrs = load_switches(a.switches)
    except (OSError, ValueError) as exc:
        print(f"central: {exc}", file=sys.stderr)
        return 2
    confs = switch_confs(topo)
    unknown = sorted(set(addrs) - set(confs))
    if unknown:
        print(f"central: {a.switches} names switches the topology lacks: {unknown}",
              file=sys.stderr)
        return 2
    confs = {n: confs[n] for n in addrs}
    ctl = Controller(confs, addrs, Path(a.key_file).read_bytes(), hello_ms=a.hello_ms,
                     dead_ms=a.dead_ms or 3 * a.hello_ms, grace_s=a.grace_s,
                     spa_addrs=a.spa, lease_s=a.lease_s)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=3), options=EXCLUSIVE_PORT)
    cpb_grpc.add_CentralAdminServicer_to_server(AdminService(ctl), server)
    if not bind(server, a.admin_addr):
        raise SystemExit(f"central: cannot listen on {a.admin_addr} (in use?)")
    server.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: ctl.stop())
    log.info("central controller starting: %d switches, admin %s", len(addrs), a.admin_addr)
    try:
        ctl.run()
    finally:
        server.stop(grace=None)
        log.info("central controller stopping; counters %s", dict(ctl.counters))
    return 0
