"""The routing core of one agent: adjacencies, LSAs, flooding, SPF scheduling.

Pure state machine, no I/O: frames come in through :meth:`Router.on_frame`,
time through :meth:`Router.tick`, port carrier through
:meth:`Router.on_port_status`; frames to send accumulate in ``outbox`` as
``(port, bytes)`` and a new RIB appears in ``rib`` with ``rib_version``
bumped. ``rib_version`` also moves when an adjacency comes up or changes MAC:
:meth:`Router.routes` (what the FIB writer reads when the version moves)
leaves out next hops whose neighbour is gone, so a FIB written while an
adjacency was down must be written again when it is back. A neighbour going
down does not move it: the FIB keeps those hops (its switch may still
forward) until the SPF that follows routes around it. The agent process (controller/agent.py) does the I/O. This split is
what lets the unit tests run whole networks of routers in one process.

Protocol, IS-IS-like (DMSC's type 2 signaling):
* hellos on every core port every ``hello_ms``; a neighbour is *up* once its
  hello lists us (two-way), *down* after ``dead_ms`` of silence, when the
  port loses carrier, or when the data plane's echoes on the port go
  unanswered (:meth:`Router.on_echo`, controller/agent/liveness.py): then
  hellos on that port are not heard until echoes return;
* each router originates its LSA (fragment 0: adjacencies and first prefixes;
  more fragments for more prefixes), re-originates on change and refreshes
  before expiry; higher sequence wins; a copy of our own LSA newer than ours
  (we restarted) makes us jump past it;
* reliable flooding: a newer LSA is acknowledged to the sender and flooded to
  every other up neighbour, retransmitted every ``rxmt_ms`` until acked; a
  new neighbour receives the whole LSDB the same way; nothing is flooded back
  where it came from, and an LSA is flooded once per sequence (no storm);
* every hello and LSA carries an HMAC-SHA256 over its body with the domain
  key (TLV auth); a bad or missing one drops the frame;
* SPF runs ``spf_delay_ms`` after the first change and at most once per
  ``spf_hold_ms``, so churn does not cost one SPF per LSA.
Every refused input is counted in ``counters`` under a named reason.
"""
from __future__ import annotations

import collections
import hmac
import logging
import random
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from controller.routing import spf
from controller.keys import auth_code
from controller.routing.lsdb import Lsdb, LsaVerdict, key as lsa_key
from controller.routing.route import Route
from topologies.topo import CPU_PORT, NextHop
from controller.proto.routing_pb2 import Adjacency, Hello, Lsa, LsaAck, LsaId, PrefixEntry
from traffic.wire import codec, defs, names

log = logging.getLogger("dmsc.routing")

MAX_PREFIXES_PER_FRAGMENT = 40     # keeps an LSA frame well under a 1500-byte MTU
MAX_FRAGMENTS = 64
MAX_LIFETIME_MS = 3_600_000
MAX_ADJACENCIES = 256
SUMMARY_IDS = 30                   # LSA ids per summary frame (under a 1500-byte MTU)
END_OF_KEYS = "\U0010ffff"          # sorts after every router name


@dataclass
class Config:
    hello_ms: int = 80
    dead_ms: int = 240        # 3 hellos, as IS-IS's hello multiplier and BFD's detect multiplier
    # A neighbour declared dead but heard again before 2 x its dead interval
    # of silence was declared too early (its hellos were late, not gone: a
    # loaded machine): that port's dead interval doubles, up to dead_max_factor
    # x dead_ms, and halves back towards dead_ms after dead_decay_s without that.
    dead_max_factor: int = 8
    dead_decay_s: float = 30.0
    rxmt_ms: int = 250        # first retransmit; doubles per copy up to rxmt_max_ms
    rxmt_max_ms: int = 2_000
    lsa_lifetime_ms: int = 120_000
    refresh_ms: int = 40_000
    spf_delay_ms: int = 10
    # On a port whose data-plane echoes are answered (controller/agent/
    # liveness.py tells the router: ``echo_live``), hellos go only every
    # ``hello_relax`` rounds and say so (their dead interval is as many times
    # longer): the echoes watch the link, the hellos only the neighbour's
    # control plane (BFD beside IS-IS does the same). 1: never relaxed.
    hello_relax: int = 1
    spf_hold_ms: int = 50     # SPF and LSA generation back off exponentially under churn:
    gen_hold_ms: int = 50     # the first event is served at once (SPF after spf_delay_ms),
    backoff_max_ms: int = 1_000   # the next after hold, then 2x, 4x ... up to backoff_max_ms,
    #                               back to immediate after backoff_max_ms without an event
    # After a start, the first LSA waits (at most this long) until every core
    # port with carrier has its adjacency, as OSPF's wait timer: an LSA per
    # adjacency that comes up costs a flood through the whole network each.
    gen_initial_ms: int = 0

    @classmethod
    def for_hello(cls, hello_ms: int, dead_ms: int | None = None,
                  rxmt_ms: int | None = None, hello_relax: int = 1) -> "Config":
        """The timers that follow the hello interval, unless given: dead
        interval 3 hellos (IS-IS's hello multiplier, BFD's detect multiplier),
        first retransmit 2.5 hellos and at least 250 ms.

        Above the default hello interval (a bigger network on the same
        cores: docs/decisions.md) the timers whose cost grows with the network
        stretch with it: LSA refresh every 500 hellos (lifetime 3 refreshes),
        LSA generation and SPF held half a hello under churn (at most 2
        hellos), and the first LSA after a start waits up to a dead interval
        for the adjacencies. At the default they are the defaults."""
        dead = dead_ms or 3 * hello_ms
        refresh = max(cls.refresh_ms, 500 * hello_ms)
        return cls(hello_ms=hello_ms, dead_ms=dead,
                   rxmt_ms=rxmt_ms or max(cls.rxmt_ms, round(2.5 * hello_ms)),
                   refresh_ms=refresh, lsa_lifetime_ms=3 * refresh, hello_relax=hello_relax,
                   gen_hold_ms=max(cls.gen_hold_ms, hello_ms // 2),
                   spf_hold_ms=max(cls.spf_hold_ms, hello_ms // 2),
                   backoff_max_ms=max(cls.backoff_max_ms, 2 * hello_ms),
                   gen_initial_ms=dead if hello_ms > cls.hello_ms else 0)


class Backoff:
    """Exponential hold-down (IS-IS's lsp-gen-interval and spf-interval, RFC 8405
    in spirit): one event is served at once, a burst at growing intervals."""

    def __init__(self, hold_ms: int, max_ms: int):
        self.hold, self.max = hold_ms / 1000, max_ms / 1000
        self.last = -1e9
        self.wait = 0.0

    @property
    def ready_at(self) -> float:
        return self.last + self.wait

    def served(self, now: float) -> None:
        quiet = now - self.last >= self.max
        self.wait = self.hold if quiet else min(max(self.hold, self.wait * 2), self.max)
        self.last = now


@dataclass
class Port:
    role: str              # "core" or "pod"
    mac: str               # this switch's MAC on that port
    cost: int = 1
    up: bool = True


@dataclass
class Neighbor:
    router: str
    router_id: int
    port: int              # our port
    mac: str
    last_heard: float
    two_way: bool = False
    announced: bool = False    # we sent a hello listing it: only then can it be two-way
    dead_s: float = 0.0        # the dead interval its last hello asked for
    # LSAs waiting for this neighbour's ack: key -> (seq, next send time,
    # gap to the retransmit after it, copies sent so far)
    rxmt: dict = field(default_factory=dict)

    def queue(self, k, seq: int, due: float, gap: float) -> None:
        self.rxmt[k] = (seq, due, gap, 0)


# the routing frames: type -> (the TLV that carries the body, its message)
ROUTING_KINDS = {defs.TYPE_HELLO: (codec.TLV_HELLO, Hello), defs.TYPE_LSA: (codec.TLV_LSA, Lsa),
                 defs.TYPE_LSA_ACK: (codec.TLV_LSA, LsaAck)}


def open_control_frame(raw: bytes, key: bytes, counters, kinds=ROUTING_KINDS):
    """Decode a punted control frame, check its HMAC and parse its body:
    ``(packet, message)``, or None with the reason counted in ``counters``
    (malformed frame, unexpected type, missing body, bad authentication,
    malformed body). Never raises on bad input."""
    try:
        pkt = codec.decode(raw)
    except ValueError:
        counters["rx_malformed_frame"] += 1
        return None
    if pkt.type not in kinds:
        counters["rx_unexpected_type"] += 1
        return None
    tlv, cls = kinds[pkt.type]
    body, auth = pkt.tlv(tlv), pkt.tlv(codec.TLV_AUTH)
    if body is None:
        counters["rx_missing_body"] += 1
        return None
    if auth is None or not hmac.compare_digest(auth, auth_code(key, pkt.type, body)):
        counters["rx_auth_fail"] += 1
        return None
    msg = cls()
    try:
        msg.ParseFromString(body)
    except DecodeError:
        counters["rx_malformed_body"] += 1
        return None
    return pkt, msg


class Router:
    def __init__(self, name: str, router_id: int, kind: str, ports: dict[int, Port],
                 key: bytes, config: Config | None = None, now: float = 0.0):
        self.name = name
        self.router_id = router_id
        self.kind = kind
        self.ports = ports
        self.key = key
        self.cfg = config or Config()
        self.lsdb = Lsdb()
        self.neighbors: dict[int, Neighbor] = {}          # by our port
        # prefix -> (port, pod mac); an SG's own name is delivered to its agent
        # (probe replies come back to it). SRs send nothing that needs an answer:
        # their names stay out of every FIB (fewer entries to rewrite on a failure)
        self.local_prefixes: dict[str, tuple[int, str]] = \
            {names.switch_name(name): (CPU_PORT, "")} if kind == "sg" else {}
        # more pod ports serving a local prefix (set_local_sharers): prefix -> {port: mac}
        self.local_sharers: dict[str, dict[int, str]] = {}
        self.outbox: list[tuple[int, bytes]] = []
        # acknowledgements owed, by port: sent together by the next tick (one
        # frame acknowledges up to SUMMARY_IDS LSAs: OSPF's delayed acks)
        self._acks: dict[int, list[LsaId]] = {}
        self.counters: collections.Counter = collections.Counter()
        self.seq = 0
        self._gen = Backoff(self.cfg.gen_hold_ms, self.cfg.backoff_max_ms)
        self._spf_backoff = Backoff(self.cfg.spf_hold_ms, self.cfg.backoff_max_ms)
        self._last_tick: float | None = None
        # ports whose dead interval was raised: port -> (interval s, since)
        self._raised_dead: dict[int, tuple[float, float]] = {}
        self._declared_dead: dict[int, tuple[str, float, float]] = {}  # port -> (router, last heard, interval)
        # ports whose echoes went unanswered: no adjacency there until they return
        self.echo_down: set[int] = set()
        self.echo_live: set[int] = set()     # ports whose echoes are answered (liveness.py)
        self._hello_skip: dict[int, int] = {}   # relaxed port -> hello rounds to skip
        self.my_fragments: set[int] = set()
        # each local prefix keeps its fragment while it is announced (a new one
        # takes the first fragment with room), and only the fragments whose
        # content changed are originated again: one prefix added or withdrawn
        # floods one fragment, and no prefix ever moves between fragments (with
        # sorted chunks, a prefix added early in the order shifted every later
        # one: all of an SG's fragments flooded, and a router that ran its SPF
        # between two of them lost the prefixes in flight: issue 21's churn)
        self._frag_of: dict[str, int] = {}
        self._frag_content: dict[int, tuple] = {}     # what each fragment last said
        self.rib: dict[str, spf.RibEntry] = {}
        self.claims = spf.KeyClaims()            # one name per switch key (spf.KeyClaims)
        self.rib_version = 0
        self.spf_runs = 0
        self._spf_at: float | None = None
        self._next_hello = now
        self._jitter = random.Random(name)       # reproducible per router
        self._next_refresh = now + self.cfg.refresh_ms / 1000
        self._originate_pending = True
        self._first_lsa_by = now + self.cfg.gen_initial_ms / 1000   # then without waiting
        self._msg_id = 0
        self.last_change = now     # last time the LSDB took a newer LSA
        # called with [(prefix, port)] of our own LSA from before a restart, so
        # that an SG can keep them until its pods have had time to re-announce
        self.on_own_prefixes = None
        self.overload = False      # IS-IS's overload bit: not to be used for transit

    # -- inputs ------------------------------------------------------------
    def on_frame(self, port: int, raw: bytes, now: float) -> None:
        """A control frame punted from ``port``. Never raises on bad input."""
        if port not in self.ports or self.ports[port].role != "core":
            self.counters["rx_ctrl_on_pod_port"] += 1
            return
        opened = open_control_frame(raw, self.key, self.counters)
        if opened is None:
            return
        pkt, msg = opened
        nb = self.neighbors.get(port)
        if nb is not None and pkt.type != defs.TYPE_HELLO \
                and pkt.src_name == names.switch_name(nb.router):
            # any authenticated frame from the neighbour proves it alive: on a
            # loaded machine its hellos may wait behind the LSAs it floods
            nb.last_heard = max(nb.last_heard, now)
        if pkt.type == defs.TYPE_HELLO:
            self._on_hello(port, msg, pkt.eth_src, now)
        elif pkt.type == defs.TYPE_LSA:
            self._on_lsa(port, msg, now)
        else:
            self._on_ack(port, msg, now)

    def on_port_status(self, port: int, up: bool, now: float) -> None:
        p = self.ports.get(port)
        if p is None or p.up == up:
            return
        p.up = up
        if not up and port in self.neighbors:
            self.counters["adj_down_carrier"] += 1
            self._drop_neighbor(port, now, "carrier lost")

    def on_echo(self, port: int, alive: bool, now: float, silent_ms: float = 0.0) -> None:
        """The data plane's echoes on ``port`` (controller/agent/liveness.py):
        unanswered for ``silent_ms``, the neighbour there is down, as on carrier
        loss, and its hellos are not heard until echoes come back (``alive``):
        an adjacency needs both. Hellos stay the backstop where echoes never
        worked."""
        if self.ports.get(port) is None:
            return
        if alive:
            if port in self.echo_down:
                self.echo_down.discard(port)
                log.info("port %d: echoes answered again", port)
            return
        self.echo_down.add(port)
        if port in self.neighbors:
            self.counters["adj_down_echo"] += 1
            self._drop_neighbor(port, now, f"echo: silent for {silent_ms:.0f} ms")

    def accept_prefix(self, prefix: str, port: int, mac: str, now: float) -> None:
        """The one way a prefix enters this SG's LSA (the SPA-checked
        announcement path calls it). Raises InvalidName, KeyCollision (a
        different name in the RIB has its switch key) or ValueError."""
        names.prefix_key(prefix)
        prefix = names.normalize(prefix)
        if self.ports.get(port) is None or self.ports[port].role != "pod":
            raise ValueError(f"port {port} of {self.name} is not a pod-facing port")
        if names.is_reserved(prefix):
            raise ValueError(f"{prefix} is a reserved name (the switches')")
        self.claims.guard.check(prefix)
        self.local_prefixes[prefix] = (port, mac)
        self._originate_pending = True
        self._schedule_spf(now)

    def set_overload(self, on: bool, now: float) -> None:
        """Ask the others not to route through us (while we relearn after a
        restart), or lift it; re-originates our LSA when it changes."""
        if on != self.overload:
            self.overload = on
            self._originate_pending = True
            self._schedule_spf(now)
            log.info("overload bit %s", "set: no transit through us" if on else "cleared")

    def set_local_sharers(self, prefix: str, sharers: dict[int, str], now: float) -> None:
        """Other pod ports serving a local prefix besides its holder (several
        pods of one service behind this SG): the FIB spreads calls over all of
        them (ECMP). Only local delivery changes: the LSA is the same."""
        prefix = names.normalize(prefix)
        if sharers:
            if self.local_sharers.get(prefix) != sharers:
                self.local_sharers[prefix] = dict(sharers)
                self.rib_version += 1
        elif self.local_sharers.pop(prefix, None) is not None:
            self.rib_version += 1

    def withdraw_prefix(self, prefix: str, now: float) -> bool:
        prefix = names.normalize(prefix)
        if self.local_prefixes.pop(prefix, None) is None:
            return False
        self.local_sharers.pop(prefix, None)
        self._originate_pending = True
        self._schedule_spf(now)
        return True

    def tick(self, now: float) -> None:
        """Run whatever timers are due."""
        self._stall_guard(now)
        if now >= self._next_hello:
            self._send_hellos()
            # jittered (ISO 10589: up to 25% shorter), so that agents started
            # together do not send, and load the machine, in lockstep
            self._next_hello = now + self.cfg.hello_ms / 1000 * self._jitter.uniform(0.75, 1.0)
        for port, nb in list(self.neighbors.items()):
            dead = self.dead_for(nb)
            if now - nb.last_heard > dead:
                self.counters["adj_down_dead"] += 1
                self._declared_dead[port] = (nb.router, nb.last_heard, dead)
                self._drop_neighbor(port, now, f"dead: silent for {(now - nb.last_heard) * 1000:.0f} ms")
        base = self.cfg.dead_ms / 1000
        for port, (dead, since) in list(self._raised_dead.items()):
            if now - since > self.cfg.dead_decay_s:
                dead = max(base, dead / 2)
                if dead > base:
                    self._raised_dead[port] = (dead, now)
                else:
                    del self._raised_dead[port]
                log.info("port %d: dead interval back to %.0f ms", port, dead * 1000)
        if now >= self._next_refresh:
            self._originate_pending = True
        if self._originate_pending and now >= self._gen.ready_at and self._may_originate(now):
            self._originate(now)
        purges, removed = self.lsdb.age(now)
        for lsa in purges:
            self.counters["lsa_expired"] += 1
            self._flood(lsa_key(lsa), now, except_port=None)
        if purges or removed:
            self._schedule_spf(now)
        rxmt_max = self.cfg.rxmt_max_ms / 1000
        for nb in self.neighbors.values():
            for k, (seq, due, gap, sent) in list(nb.rxmt.items()):
                if now >= due:
                    e = self.lsdb.entries.get(k)
                    if e is None or e.lsa.seq != seq:
                        del nb.rxmt[k]
                        continue
                    self._send_lsa(nb.port, self.lsdb.outgoing(k, now))
                    nb.rxmt[k] = (seq, now + gap, min(gap * 2, rxmt_max), sent + 1)
                    self.counters["lsa_retransmit" if sent else "lsa_sent"] += 1
        if self._spf_at is not None and now >= self._spf_at:
            self._run_spf(now)
        self._send_acks()

    def dead_for(self, nb: Neighbor) -> float:
        """How long ``nb`` may be silent: its port's dead interval, or the
        longer one its hellos ask for (relaxed hellos)."""
        return max(self.dead_interval(nb.port), nb.dead_s)

    def dead_interval(self, port: int) -> float:
        raised = self._raised_dead.get(port)
        return raised[0] if raised else self.cfg.dead_ms / 1000

    def _heard_again(self, port: int, router: str, now: float) -> None:
        """The first hello after we declared ``router`` dead on ``port``."""
        was, last_heard, dead = self._declared_dead.pop(port)
        if was != router or now - last_heard >= 2 * dead:
            return
        raised = min(2 * dead, self.cfg.dead_max_factor * self.cfg.dead_ms / 1000)
        self.counters["adj_down_premature"] += 1
        if raised > dead:
            self.counters["dead_interval_raised"] += 1
            log.warning("%s on port %d was declared dead too early (silent %.0f ms, heard "
                        "again): dead interval on this port raised to %.0f ms", router, port,
                        (now - last_heard) * 1000, raised * 1000)
        if raised > self.cfg.dead_ms / 1000:
            self._raised_dead[port] = (raised, now)       # (again) for dead_decay_s

    def _stall_guard(self, now: float) -> None:
        """Silence is only counted while this router runs. On a loaded machine
        the agent itself may get no CPU for a while; hellos that waited in its
        queues meanwhile must not make it declare every neighbour dead."""
        hello = self.cfg.hello_ms / 1000
        if self._last_tick is not None and now - self._last_tick > 2 * hello:
            excess = now - self._last_tick - hello
            for nb in self.neighbors.values():
                nb.last_heard = min(nb.last_heard + excess, now)
            self.counters["stalls"] += 1
            log.info("no tick for %.0f ms (starved of CPU?): neighbour silence during it "
                     "not counted", (now - self._last_tick) * 1000)
        self._last_tick = now

    def next_deadline(self) -> float:
        times = [self._next_hello, self._next_refresh]
        if self._spf_at is not None:
            times.append(self._spf_at)
        if self._originate_pending:
            times.append(max(self._gen.ready_at, min(self._first_lsa_by, self._next_hello)))
        for nb in self.neighbors.values():
            times.append(nb.last_heard + self.dead_for(nb))
            times += [due for _s, due, _g, _n in nb.rxmt.values()]
        times += [e.expires for e in self.lsdb.entries.values()]
        return min(times)

    def _may_originate(self, now: float) -> bool:
        """After a start: once every core port with carrier has its adjacency,
        or ``gen_initial_ms`` has passed, whichever is first."""
        if now >= self._first_lsa_by:
            return True
        if self.all_adjacent:
            self._first_lsa_by = now
            return True
        return False

    @property
    def all_adjacent(self) -> bool:
        """Every core port with carrier has a two-way neighbour."""
        ups = [p for p, pt in self.ports.items()
               if pt.role == "core" and pt.up and p not in self.echo_down]
        return all(p in self.neighbors and self.neighbors[p].two_way for p in ups)

    @property
    def synced(self) -> bool:
        """Every core port with carrier has a two-way neighbour and nothing
        waits for an ack: the LSDB exchange after (re)start is done."""
        return self.all_adjacent and not any(nb.rxmt for nb in self.neighbors.values())

    # -- hellos --------------------------------------------------------------
    def _frame(self, msg_type: int, tlv: int, body: bytes, port: int) -> bytes:
        self._msg_id = (self._msg_id + 1) & 0xFFFFFFFF
        return codec.encode(msg_type, names.switch_name(), names.switch_name(self.name),
                           [(tlv, body), (codec.TLV_AUTH, auth_code(self.key, msg_type, body))],
                           msg_id=self._msg_id, hop_limit=1, eth_src=self.ports[port].mac)

    def relaxed(self, port: int) -> bool:
        """Hellos on ``port`` only every ``hello_relax`` rounds: its echoes are
        answered and its adjacency is up."""
        nb = self.neighbors.get(port)
        return (self.cfg.hello_relax > 1 and port in self.echo_live and nb is not None
                and nb.two_way)

    def _send_hellos(self) -> None:
        for port, p in self.ports.items():
            if not (p.role == "core" and p.up):
                continue
            if self.relaxed(port):
                # the first relaxed hello goes at once (it announces the longer
                # dead interval), then one every hello_relax rounds
                skip = self._hello_skip.get(port, 0)
                if skip > 0:
                    self._hello_skip[port] = skip - 1
                    continue
                self._hello_skip[port] = self.cfg.hello_relax - 1
            else:
                self._hello_skip.pop(port, None)
            self._send_hello(port)

    def _send_hello(self, port: int) -> None:
        """A hello on ``port``, listing the neighbour heard there (which can
        go two-way only once we have listed it)."""
        nb = self.neighbors.get(port)
        if nb is not None:
            nb.announced = True
        relax = self.cfg.hello_relax if self.relaxed(port) else 1
        h = Hello(router=self.name, router_id=self.router_id, port=port,
                  hello_ms=self.cfg.hello_ms * relax, dead_ms=self.cfg.dead_ms * relax,
                  heard=[nb.router] if nb else [])
        self.outbox.append((port, self._frame(defs.TYPE_HELLO, codec.TLV_HELLO,
                                              h.SerializeToString(), port)))
        self.counters["hello_sent"] += 1

    def _asked_dead(self, h: Hello) -> float:
        """The dead interval a neighbour's hello asks for (longer when its
        hellos are relaxed), at most ``max(dead_max_factor, hello_relax)`` of
        ours; never shorter than ours (``tick`` takes the larger)."""
        cap = self.cfg.dead_ms * max(self.cfg.dead_max_factor, self.cfg.hello_relax)
        return min(h.dead_ms, cap) / 1000

    def _on_hello(self, port: int, h: Hello, mac: str, now: float) -> None:
        if not h.router or h.router == self.name:
            self.counters["rx_hello_bad_router"] += 1
            return
        if port in self.echo_down:           # the data plane says the link is gone
            self.counters["rx_hello_echo_down"] += 1
            return
        nb = self.neighbors.get(port)
        if nb is not None and nb.router != h.router:
            self.counters["adj_down_replaced"] += 1
            self._drop_neighbor(port, now, f"replaced by {h.router}")
            nb = None
        if nb is None:
            if port in self._declared_dead:
                self._heard_again(port, h.router, now)
            nb = Neighbor(h.router, h.router_id, port, mac, now, dead_s=self._asked_dead(h))
            self.neighbors[port] = nb
            # Answer at once, listing it. A hello listing us counts only once
            # it has seen that: one sent before it saw us gone (still in
            # flight when we dropped it) must not bring the adjacency back.
            self._send_hello(port)
            return
        nb.last_heard = now
        nb.dead_s = self._asked_dead(h)
        if nb.mac != mac:
            nb.mac = mac
            if nb.two_way:
                self.rib_version += 1        # routes() gives its hops the new MAC
        two_way = self.name in h.heard and nb.announced
        if two_way and not nb.two_way:
            nb.two_way = True
            self.rib_version += 1            # routes() has its hops again
            self.counters["adj_up"] += 1
            log.info("adjacency up: %s on port %d", nb.router, port)
            self._originate_pending = True
            self._send_hello(port)       # at once: its two-way check need not wait an interval
            # database exchange: a summary of our LSDB now; what it shows the
            # neighbour lacks, it gets at once (its summary tells us what we
            # lack). Everything is also queued for after one retransmit
            # interval in case the summary is lost.
            rxmt = self.cfg.rxmt_ms / 1000
            for k, e in self.lsdb.entries.items():
                if k not in nb.rxmt:
                    nb.queue(k, e.lsa.seq, now + rxmt, rxmt)
            self._send_summary(port)
        elif not two_way and nb.two_way:
            self.counters["adj_down_oneway"] += 1
            self._drop_neighbor(port, now, "its hello no longer lists us")

    def _drop_neighbor(self, port: int, now: float, why: str) -> None:
        nb = self.neighbors.pop(port, None)
        if nb is not None and nb.two_way:
            log.info("adjacency down: %s on port %d (%s)", nb.router, port, why)
            # no new version here: until the SPF that follows, the FIB keeps the
            # hops through it (a neighbour whose agent died still forwards)
            self._originate_pending = True
            self._schedule_spf(now)

    # -- LSAs ---------------------------------------------------------------
    def _fragments(self) -> dict[int, list[tuple[str, int]]]:
        """The local prefixes by fragment: each keeps the fragment it was given;
        a new one goes to the first with room (fragment 0 always exists)."""
        local = self.local_prefixes
        for pfx in [p for p in self._frag_of if p not in local]:
            del self._frag_of[pfx]
        count = collections.Counter(self._frag_of.values())
        for pfx in sorted(p for p in local if p not in self._frag_of):
            free = next((i for i in range(MAX_FRAGMENTS)
                         if count[i] < MAX_PREFIXES_PER_FRAGMENT), None)
            if free is None:
                self.counters["prefix_no_fragment"] += 1
                log.warning("no LSA fragment has room for %s (%d prefixes at most)", pfx,
                            MAX_FRAGMENTS * MAX_PREFIXES_PER_FRAGMENT)
                continue
            self._frag_of[pfx] = free
            count[free] += 1
        out: dict[int, list[tuple[str, int]]] = {0: []}
        for pfx, i in sorted(self._frag_of.items()):
            out.setdefault(i, []).append((pfx, local[pfx][0]))
        return out

    def _originate(self, now: float) -> None:
        self._originate_pending = False
        self._gen.served(now)
        self.seq += 1
        full = now >= self._next_refresh          # a refresh: every fragment again
        if full:
            self._next_refresh = now + self.cfg.refresh_ms / 1000
        adjs = [Adjacency(neighbor=nb.router, cost=self.ports[p].cost, port=p)
                for p, nb in sorted(self.neighbors.items()) if nb.two_way]
        frags = set()
        for i, chunk in sorted(self._fragments().items()):
            content = (tuple((a.neighbor, a.cost, a.port) for a in adjs) if i == 0 else (),
                       tuple(chunk), self.overload and i == 0, self.kind)
            frags.add(i)
            if not full and self._frag_content.get(i) == content and i in self.my_fragments:
                continue                          # unchanged: its copy stands
            self._frag_content[i] = content
            lsa = Lsa(origin=self.name, origin_id=self.router_id, fragment=i, seq=self.seq,
                      lifetime_ms=self.cfg.lsa_lifetime_ms, kind=self.kind,
                      adjacencies=adjs if i == 0 else [],
                      prefixes=[PrefixEntry(prefix=pfx, port=port) for pfx, port in chunk],
                      overload=self.overload and i == 0)
            self._install_own(lsa, now)
        for i in self.my_fragments - frags:       # fragments no longer needed: purge
            self._frag_content.pop(i, None)
            lsa = Lsa(origin=self.name, origin_id=self.router_id, fragment=i, seq=self.seq,
                      lifetime_ms=0, kind=self.kind)
            self._install_own(lsa, now)
        self.my_fragments = frags
        self.counters["lsa_originated"] += 1

    def _install_own(self, lsa: Lsa, now: float) -> None:
        if self.lsdb.install(lsa, now) is LsaVerdict.NEWER:
            self._flood(lsa_key(lsa), now, except_port=None)
            self._schedule_spf(now)

    def _validate(self, lsa: Lsa) -> str | None:
        if not lsa.origin:
            return "rx_lsa_no_origin"
        if lsa.fragment >= MAX_FRAGMENTS:
            return "rx_lsa_bad_fragment"
        if len(lsa.prefixes) > MAX_PREFIXES_PER_FRAGMENT:
            return "rx_lsa_too_many_prefixes"
        if len(lsa.adjacencies) > MAX_ADJACENCIES:
            return "rx_lsa_too_many_adjacencies"
        if lsa.lifetime_ms > MAX_LIFETIME_MS:
            return "rx_lsa_bad_lifetime"
        if lsa.kind not in ("sg", "sr"):
            return "rx_lsa_bad_kind"
        for p in lsa.prefixes:
            try:
                names.prefix_key(p.prefix)
            except names.InvalidName:
                return "rx_lsa_bad_prefix"
        return None

    def _on_lsa(self, port: int, lsa: Lsa, now: float) -> None:
        nb = self.neighbors.get(port)
        if nb is None or not nb.two_way:
            self.counters["rx_lsa_no_adjacency"] += 1
            return
        bad = self._validate(lsa)
        if bad:
            self.counters[bad] += 1
            return
        k = lsa_key(lsa)
        if lsa.origin == self.name:
            # Our own LSA, from before a restart or flooded back: take the
            # higher sequence and re-originate past it (or purge it).
            self._ack(port, lsa)
            if lsa.seq >= self.seq and lsa.lifetime_ms > 0:
                self.counters["lsa_own_newer"] += 1
                if self.on_own_prefixes is not None and lsa.seq > self.seq:   # before a restart
                    self.on_own_prefixes([(p.prefix, p.port) for p in lsa.prefixes], now)
                self.seq = lsa.seq
                self.lsdb.install(lsa, now)
                self.my_fragments.add(lsa.fragment)
                self._frag_content.pop(lsa.fragment, None)    # ours must supersede it
                self._originate_pending = True
            return
        verdict = self.lsdb.install(lsa, now)
        self.counters[f"lsa_{verdict.value}"] += 1
        if verdict is LsaVerdict.NEWER:
            self.last_change = now
            self._ack(port, lsa)
            nb.rxmt.pop(k, None)
            self._flood(k, now, except_port=port)
            self._schedule_spf(now)
        elif verdict is LsaVerdict.SAME:
            self._ack(port, lsa)
            if k in nb.rxmt and nb.rxmt[k][0] == lsa.seq:
                del nb.rxmt[k]                   # it has ours: implicit ack
        else:                                    # send it our newer copy
            nb.queue(k, self.lsdb.entries[k].lsa.seq, now, self.cfg.rxmt_ms / 1000)

    def _ack(self, port: int, lsa: Lsa) -> None:
        self._acks.setdefault(port, []).append(
            LsaId(origin=lsa.origin, fragment=lsa.fragment, seq=lsa.seq))

    def _send_acks(self) -> None:
        """Every acknowledgement owed, one frame per port (per SUMMARY_IDS
        LSAs): a flood that brings a router many LSAs at once, as a cold start
        does, costs its neighbours one ack frame instead of one per LSA."""
        for port, ids in self._acks.items():
            for i in range(0, len(ids), SUMMARY_IDS):
                ack = LsaAck(ids=ids[i:i + SUMMARY_IDS])
                self.outbox.append((port, self._frame(defs.TYPE_LSA_ACK, codec.TLV_LSA,
                                                      ack.SerializeToString(), port)))
                self.counters["ack_frames_sent"] += 1
        self._acks.clear()

    def _on_ack(self, port: int, ack: LsaAck, now: float) -> None:
        nb = self.neighbors.get(port)
        if nb is None:
            self.counters["rx_ack_no_adjacency"] += 1
            return
        for i in ack.ids:
            k = (i.origin, i.fragment)
            if k in nb.rxmt and nb.rxmt[k][0] <= i.seq:
                del nb.rxmt[k]
                self.counters["lsa_acked"] += 1
        if ack.summary:
            self.counters["rx_summary"] += 1
            theirs = {(i.origin, i.fragment): i.seq for i in ack.ids}
            first, last = (ack.first.origin, ack.first.fragment), (ack.last.origin, ack.last.fragment)
            rxmt = self.cfg.rxmt_ms / 1000
            for k, e in self.lsdb.entries.items():
                if first <= k <= last and theirs.get(k, -1) < e.lsa.seq:
                    nb.queue(k, e.lsa.seq, now, rxmt)        # it lacks this one: now

    def _send_summary(self, port: int) -> None:
        """Our LSDB as (origin, fragment, seq) in frames of SUMMARY_IDS, each
        covering a contiguous key range, the last one up to the end of keys."""
        ids = [LsaId(origin=k[0], fragment=k[1], seq=e.lsa.seq)
               for k, e in sorted(self.lsdb.entries.items())]
        chunks = [ids[i:i + SUMMARY_IDS] for i in range(0, len(ids), SUMMARY_IDS)] or [[]]
        first = LsaId(origin="", fragment=0)
        for n, chunk in enumerate(chunks):
            last = LsaId(origin=END_OF_KEYS, fragment=MAX_FRAGMENTS) if n == len(chunks) - 1 \
                else LsaId(origin=chunk[-1].origin, fragment=chunk[-1].fragment)
            ack = LsaAck(ids=chunk, summary=True, first=first, last=last)
            self.outbox.append((port, self._frame(defs.TYPE_LSA_ACK, codec.TLV_LSA,
                                                  ack.SerializeToString(), port)))
            first = LsaId(origin=last.origin, fragment=last.fragment + 1)
        self.counters["summaries_sent"] += 1

    def _flood(self, k, now: float, except_port: int | None) -> None:
        seq = self.lsdb.entries[k].lsa.seq
        for port, nb in self.neighbors.items():
            if port == except_port or not nb.two_way:
                continue
            nb.queue(k, seq, now, self.cfg.rxmt_ms / 1000)   # sent by the next tick, then until acked
        self.counters["lsa_flooded"] += 1

    def _send_lsa(self, port: int, lsa: Lsa) -> None:
        self.outbox.append((port, self._frame(defs.TYPE_LSA, codec.TLV_LSA,
                                              lsa.SerializeToString(), port)))

    # -- SPF ----------------------------------------------------------------
    def _schedule_spf(self, now: float) -> None:
        if self._spf_at is None:
            self._spf_at = max(now + self.cfg.spf_delay_ms / 1000, self._spf_backoff.ready_at)

    def _run_spf(self, now: float) -> None:
        self._spf_at = None
        self._spf_backoff.served(now)
        self.spf_runs += 1
        new = spf.rib(self.lsdb, self.name,
                      {p: port for p, (port, _m) in self.local_prefixes.items()}, self.claims)
        for prefix, holder in self.claims.new.items():
            self.counters["rib_key_collision"] += 1
            log.warning("key collision: %s (from %s) has the switch key of %s (from %s): "
                        "%s kept out of the RIB", prefix, self._origin_of(prefix), holder,
                        self._origin_of(holder), prefix)
        if new != self.rib:
            self.rib = new
            self.rib_version += 1

    def _origin_of(self, prefix: str) -> str:
        if prefix in self.local_prefixes:
            return f"{self.name} (local)"
        return ", ".join(e.lsa.origin for e in self.lsdb.live()
                         if any(p.prefix == prefix for p in e.lsa.prefixes)) or "?"

    def routes(self):
        """The RIB as FIB routes: next-hop routers become (port, their MAC);
        local prefixes the pod's port and MAC. Hops whose neighbour is gone are
        left out; a prefix with none left gets no entry."""
        out = {}
        for prefix, e in self.rib.items():
            hops = set()
            for h in e.hops:
                if h.neighbor == spf.LOCAL:
                    local = self.local_prefixes.get(prefix)
                    if local is not None:
                        hops.add(NextHop(h.port, local[1]))     # CPU port: a punt
                        hops.update(NextHop(p, m)
                                    for p, m in self.local_sharers.get(prefix, {}).items())
                else:
                    nb = self.neighbors.get(h.port)
                    if nb is not None and nb.router == h.neighbor and nb.two_way:
                        hops.add(NextHop(h.port, nb.mac))
            if hops:
                out[prefix] = Route.via(hops)
        return out
