"""Data-plane liveness (controller/agent/liveness.py): when unanswered echoes
take a neighbour down, and what it takes to bring it back.

The routers run on SimNet's virtual clock; the switches' ``echo_rx`` counters
are simulated by the test: a reflected echo comes back over a link that is not
cut (the P4 side is tests/bmv2/test_echo.py).
"""
from __future__ import annotations

import threading
from types import SimpleNamespace
from collections import Counter

import pytest
from scapy.layers.l2 import Ether

from controller.agent.liveness import EchoMonitor, LivenessLoop
from controller.routing.router import Config
from controller.switch import p4names as N
from tests.conftest import ROOT
from tests.support.routing_sim import SimNet
from topologies.topo import Topology
from traffic.wire import defs, layers

FIG2 = Topology.load(ROOT / "topologies" / "fig2.yaml")
K = 3      # echoes unanswered in a row


def test_a_port_is_down_after_k_unanswered_echoes_with_its_adjacency_up_not_before():
    m = EchoMonitor(K)
    assert m.observe({2: 5}, {}, adjacent={2}, now=0.0) == []              # first read
    assert m.observe({2: 6}, {2: 1}, adjacent={2}, now=0.1) == []          # answered
    for i in range(1, K):
        assert m.observe({2: 6}, {2: 1}, adjacent={2}, now=0.1 + 0.1 * i) == [], i
    assert m.observe({2: 6}, {2: 1}, adjacent={2}, now=0.1 + 0.1 * K) == \
        [(2, False, pytest.approx(100.0 * K))]
    # declared once: more silent reads say nothing new
    assert m.observe({2: 6}, {2: 1}, adjacent={2}, now=1.0) == []


def test_misses_are_counted_in_echoes_when_a_read_covers_several():
    m = EchoMonitor(4)
    m.observe({2: 0}, {}, {2}, 0.0)
    m.observe({2: 2}, {2: 2}, {2}, 0.2)
    assert m.observe({2: 2}, {2: 2}, {2}, 0.4) == []           # 2 of 4
    assert m.observe({2: 2}, {2: 2}, {2}, 0.6) == [(2, False, pytest.approx(400.0))]


def test_a_move_in_between_starts_the_count_again():
    m = EchoMonitor(K)
    m.observe({2: 0}, {}, {2}, 0.0)
    m.observe({2: 1}, {2: 1}, {2}, 0.1)
    n = 1
    for t in range(2, 12):
        if t % K == 0:
            n += 1                                 # one answered echo every K
        assert m.observe({2: n}, {2: 1}, {2}, t / 10) == []


@pytest.mark.parametrize("case", ["never answered", "no adjacency", "nothing sent"])
def test_silence_that_proves_nothing_takes_no_port_down(case):
    """Echoes never answered on a port (a neighbour that does not reflect
    them: the hellos decide there), a port with no adjacency to take down, and
    reads after no echo was sent (the switch was unreachable) are not misses."""
    m = EchoMonitor(K)
    m.observe({2: 4}, {}, {2}, 0.0)
    if case != "never answered":
        m.observe({2: 5}, {2: 1}, {2}, 0.1)
    sent = {} if case == "nothing sent" else {2: 1}
    adjacent = set() if case == "no adjacency" else {2}
    for i in range(2, 2 + 3 * K):
        assert m.observe({2: m.last[2]}, sent, adjacent, i / 10) == []
    assert not m.down


def test_after_a_restart_the_counter_starts_again_from_its_new_value():
    m = EchoMonitor(K)
    m.observe({2: 4}, {}, {2}, 0.0)
    m.observe({2: 9}, {2: 1}, {2}, 0.1)
    assert m.observe({2: 0}, {2: 1}, {2}, 0.2) == []      # switch restarted: no verdict
    assert m.missed[2] == 0 and m.last[2] == 0
    events = [m.observe({2: 0}, {2: 1}, {2}, 0.3 + i / 10) for i in range(K)]
    assert events[-1] and events[-1][0][:2] == (2, False)      # was answered before


def test_only_a_move_brings_a_port_back():
    m = EchoMonitor(K)
    m.observe({2: 0}, {}, {2}, 0.0)
    m.observe({2: 1}, {2: 1}, {2}, 0.1)
    for i in range(K):
        ev = m.observe({2: 1}, {2: 1}, {2}, 0.2 + i / 10)
    assert ev == [(2, False, pytest.approx(100.0 * K))] and m.down == {2}
    for i in range(5):                              # still silent, adjacency or not
        assert m.observe({2: 1}, {2: 1}, {2 * (i % 2)}, 1.0 + i / 10) == []
    assert m.observe({2: 2}, {2: 1}, set(), 2.0) == [(2, True, 0.0)] and not m.down


def declare_down(m: EchoMonitor, t0: float, port: int = 2) -> float:
    """Answered at t0, then silent until declared down; returns when."""
    m.observe({port: 1}, {port: 1}, {port}, t0)
    t, n = t0, 0
    while port not in m.down:
        t += 0.1
        n += 1
        m.observe({port: 1}, {port: 1}, {port}, t)
        assert n <= 10 * K
    return t


def test_echoes_back_soon_after_a_verdict_double_that_ports_misses_then_decay():
    m = EchoMonitor(K, max_factor=8, decay_s=30.0)
    m.observe({2: 0}, {}, {2}, 0.0)
    t = declare_down(m, 0.1)                       # silent 0.3 s when declared
    assert m.observe({2: 2}, {2: 1}, {2}, t + 0.1) == [(2, True, 0.0)]   # only late
    assert m.premature == 1 and m.misses_for(2) == 2 * K
    t2 = declare_down(m, t + 0.2)
    assert round((t2 - t - 0.2) / 0.1) == 2 * K    # took twice as many echoes
    m.observe({2: 3}, {2: 1}, {2}, t2 + 0.1)
    assert m.misses_for(2) == 4 * K
    m.observe({2: 4}, {2: 1}, set(), t2 + 31)      # 30 s without: halves back
    assert m.misses_for(2) == 2 * K
    m.observe({2: 5}, {2: 1}, set(), t2 + 62)
    assert m.misses_for(2) == K


def test_a_real_outage_does_not_raise_the_misses():
    m = EchoMonitor(K)
    m.observe({2: 0}, {}, {2}, 0.0)
    t = declare_down(m, 0.1)
    for i in range(1, 30):                         # down for 3 s, as a cut link
        m.observe({2: 1}, {2: 1}, {2}, t + i / 10)
    assert m.observe({2: 2}, {2: 1}, {2}, t + 3.0) == [(2, True, 0.0)]
    assert m.premature == 0 and m.misses_for(2) == K


# -- with the routers --------------------------------------------------------
class EchoSim:
    """SimNet with echo liveness: every ``interval`` each router's monitor reads
    its ports' simulated echo_rx (moved when the link is not cut) and tells
    its router; hellos are slow (ring:64's timers), so only the echoes can
    explain a fast reaction."""

    def __init__(self, interval: float = 0.05):
        self.net = SimNet(FIG2, Config.for_hello(640))
        self.net.accept_all()
        self.net.run(8.0)
        self.interval = interval
        self.rx: Counter = Counter()               # (switch, port) -> reflected echoes
        self.cut: set[frozenset] = set()           # where echoes do not come back
        self.mons = {s: EchoMonitor(K) for s in self.net.routers}
        self.sent: dict[str, dict[int, int]] = {s: {} for s in self.net.routers}
        self.events: list = []
        self.run(0.5)                              # echoes answered before anything fails

    def ports(self, s):
        return [p for p, pt in self.net.routers[s].ports.items() if pt.role == "core"]

    def run(self, seconds: float) -> None:
        end = self.net.now + seconds
        while self.net.now < end - 1e-9:
            self.net.run(self.interval)
            for s, r in self.net.routers.items():
                counts = {p: self.rx[s, p] for p in self.ports(s)}
                adjacent = {p for p, nb in r.neighbors.items() if nb.two_way}
                for port, alive, ms in self.mons[s].observe(counts, self.sent[s], adjacent,
                                                            self.net.now):
                    self.events.append((s, port, alive))
                    r.on_echo(port, alive, self.net.now, ms)
                self.sent[s] = {p: 1 for p in self.ports(s)}
                for p in self.sent[s]:              # this round's echoes, reflected or not
                    nb = FIG2.neighbour_on(s, p)
                    if frozenset((s, nb)) not in self.cut:
                        self.rx[s, p] += 1


def expected_without(link):
    from tests.unit.test_routing import expected
    core = FIG2.core_graph()
    if link:
        core.remove_edge(*link)
    return expected(FIG2, core)


def test_a_silent_cut_is_routed_around_by_echoes_long_before_the_dead_interval():
    sim = EchoSim()
    assert sim.net.fibs() == expected_without(None)
    sim.net.down_links.add(frozenset(("sg1", "sr3")))   # silent: no carrier change
    sim.cut.add(frozenset(("sg1", "sr3")))
    sim.run(0.3)                                    # K rounds of 50 ms and SPF: not 1.92 s
    assert sim.net.fibs() == expected_without(("sg1", "sr3"))
    sg1, sr3 = sim.net.routers["sg1"], sim.net.routers["sr3"]
    assert sg1.counters["adj_down_echo"] == 1 and sr3.counters["adj_down_echo"] == 1
    assert sg1.counters["adj_down_dead"] == 0


def test_recovery_needs_the_echoes_and_the_hellos():
    sim = EchoSim()
    link = frozenset(("sg1", "sr3"))
    p = FIG2.port("sg1", "sr3")
    sim.net.down_links.add(link)
    sim.cut.add(link)
    sim.run(0.5)
    # hellos get through again but echoes do not: no adjacency, however long
    sim.net.down_links.discard(link)
    sim.run(4.0)
    assert p not in sim.net.routers["sg1"].neighbors
    assert sim.net.routers["sg1"].counters["rx_hello_echo_down"] > 0
    assert sim.net.fibs() == expected_without(("sg1", "sr3"))
    # echoes come back but hellos do not: still none
    sim.net.down_links.add(link)
    sim.cut.discard(link)
    sim.run(4.0)
    assert p not in sim.net.routers["sg1"].neighbors or \
        not sim.net.routers["sg1"].neighbors[p].two_way
    assert ("sg1", p, True) in sim.events
    # both: the adjacency and the routes are back
    sim.net.down_links.discard(link)
    sim.run(3.0)
    assert sim.net.routers["sg1"].neighbors[p].two_way
    assert sim.net.fibs() == expected_without(None)


# -- the agent's round ---------------------------------------------------------
class FakeSwitch:
    def __init__(self):
        self.reads: list = []
        self.cells: dict[int, int] = {}

    def read_counter_cells(self, counter, indices):
        self.reads.append((counter, list(indices)))
        return {i: self.cells.get(i, 0) for i in indices}


class FakeAgent:
    def __init__(self, switch: str):
        net = SimNet(FIG2)
        self.topo, self.name = FIG2, switch
        self.router = net.routers[switch]
        self.lock = threading.RLock()
        self.counters = self.router.counters
        self.stop_event = threading.Event()
        self.sw = FakeSwitch()
        self.fib = SimpleNamespace(written_at=-100.0)     # no FIB write lately
        self.out: list = []
        self.woken = 0

    def packet_out(self, frame, **md):
        self.out.append((frame, md))

    def wake(self):
        self.woken += 1


def test_echoes_go_out_of_every_core_port_and_one_read_covers_them_all():
    agent = FakeAgent("sr3")
    per_read = 2
    loop = LivenessLoop(agent, 0.05, misses=2, per_read=per_read)
    core = sorted(p for p, pt in agent.router.ports.items() if pt.role == "core")
    loop.tick(0.0)
    assert agent.sw.reads == [(N.COUNTER_ECHO_RX, core)]
    assert sorted(md["egress_port"] for _f, md in agent.out) == core
    for frame, md in agent.out:
        e = layers.parse(frame)
        eth = Ether(frame)
        port = md["egress_port"]
        nb = FIG2.neighbour_on("sr3", port)
        assert e.type == defs.TYPE_ECHO and e.flags == 0 and e.rec_count == 0
        assert eth.src.lower() == FIG2.mac("sr3", port).lower()
        assert eth.dst.lower() == FIG2.mac(nb, FIG2.port(nb, "sr3")).lower()
    loop.tick(0.05)                                 # an echo, no read
    assert len(agent.sw.reads) == 1 and len(agent.out) == 2 * len(core)
    # answered, then two echoes unanswered with the adjacency up: the router hears once
    from controller.routing.router import Neighbor
    port = core[0]
    agent.sw.cells = {p: 2 for p in core}
    loop.tick(0.1)
    loop.tick(0.15)
    r = agent.router
    assert not r.echo_down
    r.neighbors[port] = Neighbor("x", 9, port, "02:00:00:00:00:99", 0.0, two_way=True)
    assert agent.woken == 0
    loop.tick(0.2)                                  # the read covers 2 unanswered echoes
    assert port not in r.neighbors and r.counters["adj_down_echo"] == 1
    assert port in r.echo_down and agent.woken == 1
    assert len(agent.sw.reads) == 3


def _answered_once(interval: float, misses: int):
    """sr3's liveness loop, a read every echo, its first core port adjacent:
    read at 0, the echo answered by the read one interval later."""
    from controller.routing.router import Neighbor
    agent = FakeAgent("sr3")
    loop = LivenessLoop(agent, interval, misses=misses, per_read=1)
    port = min(p for p, pt in agent.router.ports.items() if pt.role == "core")
    r = agent.router
    r.neighbors[port] = Neighbor("x", 9, port, "02:00:00:00:00:99", 0.0, two_way=True)
    loop.tick(0.0)
    agent.sw.cells[port] = 1
    loop.tick(interval)                             # answered
    return agent, loop, port, r


def test_no_echo_verdict_just_after_our_own_fib_write():
    """A FIB write stalls the switch's packets: silence right after one is not held
    against the neighbour (the hellos still are)."""
    agent, loop, port, r = _answered_once(0.05, misses=2)
    agent.fib.written_at = 0.06
    for i in range(2, 22):                          # silent, within 1 s of the write
        loop.tick(i * 0.05)
    assert port in r.neighbors and not r.echo_down
    loop.tick(1.1)
    loop.tick(1.15)                                 # two unanswered after the quiet time
    assert port not in r.neighbors and r.echo_down == {port}


def test_echoes_by_default_at_the_default_hello_only():
    from controller.agent.liveness import echo_ms_for
    from controller.agent.agent_command import parser
    assert echo_ms_for(Config.hello_ms) == 40          # Figure 2: a cut seen in 80-160 ms
    assert echo_ms_for(640) == 0                       # ring:64 on 2 cores: hellos alone
    a = parser().parse_args(["--topo", "t", "--switch", "s", "--grpc-addr", "g",
                             "--device-id", "1", "--admin-addr", "a", "--key-file", "k",
                             "--hello-ms", "640", "--echo-ms", "128"])
    assert a.echo_ms == 128
    from controller.agent.agent_command import liveness_settings
    assert liveness_settings(a) == (128, 2, 2, 1)


def _args(*more):
    from controller.agent.agent_command import parser
    return parser().parse_args(["--topo", "t", "--switch", "s", "--grpc-addr", "g",
                                "--device-id", "1", "--admin-addr", "a", "--key-file", "k",
                                "--hello-ms", "640", *more])


def test_echo_ms_fast_is_half_the_hello_one_miss_a_read_every_echo_hellos_relaxed():
    from controller.agent.agent_command import liveness_settings
    assert liveness_settings(_args("--echo-ms", "fast")) == (320, 1, 1, 4)
    # each of them can still be set
    assert liveness_settings(_args("--echo-ms", "fast", "--echo-misses", "2",
                                   "--hello-relax", "1")) == (320, 2, 1, 1)
    assert liveness_settings(_args("--echo-ms", "auto")) == (0, 2, 2, 1)   # stretched hellos
    assert liveness_settings(_args()) == (0, 2, 2, 1)


@pytest.mark.parametrize("flag,value", [("--echo-ms", "quick"), ("--hello-relax", "0"),
                                        ("--echo-misses", "0"), ("--echoes-per-read", "x")])
def test_liveness_arguments_that_cannot_work_are_refused(flag, value, capsys):
    with pytest.raises(SystemExit):
        _args(flag, value)
    err = capsys.readouterr().err
    assert f"argument {flag}: '{value}'" in err, err      # refused by its check, not unknown


# -- hellos relaxed where echoes answer ----------------------------------------
def _relaxed_net(relax: int = 4) -> SimNet:
    net = SimNet(FIG2, Config.for_hello(640, hello_relax=relax))
    net.accept_all()
    net.run(8.0)
    return net


def _hellos(net: SimNet) -> int:
    return sum(r.counters["hello_sent"] for r in net.routers.values())


def _echoes_answered(net: SimNet, live: bool = True) -> None:
    for r in net.routers.values():
        r.echo_live = {p for p, pt in r.ports.items() if pt.role == "core"} if live else set()


def test_hellos_go_every_fourth_round_where_echoes_answer_and_no_adjacency_drops():
    net = _relaxed_net()
    want = net.fibs()
    before = _hellos(net)
    net.run(20.0)
    plain = _hellos(net) - before
    _echoes_answered(net)
    before = _hellos(net)
    net.run(20.0)
    relaxed = _hellos(net) - before
    assert relaxed <= plain / 3, (relaxed, plain)          # about a quarter
    assert all(r.counters["adj_down_dead"] == 0 for r in net.routers.values())
    assert net.fibs() == want
    # echoes no longer answered: every round again
    _echoes_answered(net, live=False)
    before = _hellos(net)
    net.run(20.0)
    assert _hellos(net) - before >= 0.9 * plain


def test_a_relaxed_neighbour_is_given_the_longer_dead_interval_it_asks_for():
    net = _relaxed_net()
    _echoes_answered(net)
    net.run(5.0)
    sr3 = net.routers["sr3"]
    p = FIG2.port("sr3", "sg1")
    assert sr3.neighbors[p].dead_s == pytest.approx(4 * 1.92)
    # sg1's control plane goes silent while its switch would still answer
    # echoes (a dead agent): the hellos' longer interval is what notices it
    net.dead.add("sg1")
    net.run(3 * 1.92)                         # past the plain dead interval: still up
    assert p in sr3.neighbors and sr3.counters["adj_down_dead"] == 0
    net.run(2.5)                              # past 4 x 1.92 s of silence
    assert p not in sr3.neighbors and sr3.counters["adj_down_dead"] == 1


def test_hello_relax_one_leaves_the_hellos_as_they_were():
    plain, relaxed = _relaxed_net(1), _relaxed_net(1)
    _echoes_answered(relaxed)
    a, b = _hellos(plain), _hellos(relaxed)
    plain.run(10.0)
    relaxed.run(10.0)
    assert _hellos(plain) - a == _hellos(relaxed) - b


def test_the_protocol_loop_sleeps_until_a_relaxed_neighbours_longer_deadline():
    # the agent's loop sleeps until next_deadline(): one computed from the plain
    # dead interval lies in the past between relaxed hellos (a busy loop)
    net = _relaxed_net()
    _echoes_answered(net)
    net.run(5.0)
    r = net.routers["sr3"]
    for nb in r.neighbors.values():
        assert nb.dead_s == pytest.approx(4 * 1.92)
        nb.last_heard = net.now - 3.0           # silent past 1.92 s, within 7.68 s
    assert r.next_deadline() > net.now
    r.tick(net.now)
    assert len(r.neighbors) == len(FIG2.core_graph()["sr3"])   # and nobody declared dead


def test_no_echo_verdict_from_a_read_that_came_late():
    """The liveness thread got no CPU for a while (the machine was starved, so
    were the switches that reflect): the silence it then reads is not a verdict;
    the next read on time is."""
    agent, loop, port, r = _answered_once(0.1, misses=1)
    loop.tick(0.5)                                  # silent, but 4 intervals late
    assert port in r.neighbors and not r.echo_down
    assert r.counters["echo_reads_late"] == 1
    loop.tick(0.6)                                  # silent, on time: down
    assert port not in r.neighbors and r.echo_down == {port}
