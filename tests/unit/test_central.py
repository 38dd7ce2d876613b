"""The central controller: its view (discovery, links, prefixes), the FIBs it
computes from it, and the whole process against fake P4Runtime switches.

The view's FIBs are compared with topologies.expected (an independent SPF
over the topology file). The process test wires one in-process fake
P4Runtime server per Figure 2 switch with a "data plane" that carries each
packet-out on a core port to the neighbour's fake as a packet-in (what BMv2
does with our program's control frames), pods' signed announcements go in as
punts, a real SPA service checks them, and every FIB is read back from the
fakes.
"""
from __future__ import annotations

import queue
import threading
import time

import pytest

from controller.central.central_controller import Controller, load_switches
from controller.central.network_view import View, discovery_frame, switch_confs
from controller.routing.route import PUNT, Route
from controller.spa.spa_service import serve
from controller.switch import p4names as N
from controller.switch.p4rt import _canonical, load_p4info
from dmsc.converge import FibReader, expected_fibs, wait_converged
from tests.conftest import P4INFO, ROOT
from tests.support.fake_p4rt import FakeServer
from topologies.emu.spa_registry import registry_for
from topologies.emu.child_processes import free_port
from topologies.expected import served_prefixes
from topologies.topo import Topology
from traffic.identity import Identity
from traffic.wire import codec, defs, names

FIG2 = Topology.load(ROOT / "topologies" / "fig2.yaml")
KEY = b"domain-key"


def discover_all(view, topo, now, skip=()):
    """Every core link's discovery frames, both ways (except links in ``skip``)."""
    for u, v in topo.core_graph().edges:
        if {u, v} in [set(e) for e in skip]:
            continue
        for a, b in ((u, v), (v, u)):
            frame = discovery_frame(view.switches[a], topo.port(a, b), KEY, 1, 80, 240)
            view.on_discovery(b, topo.port(b, a), frame, now)


def full_view(topo=FIG2, now=0.0):
    view = View(switch_confs(topo), KEY, 0.08, 0.24)
    for s in topo.switches():
        view.switch_up(s, now)
    discover_all(view, topo, now)
    for prefix, pods in served_prefixes(topo).items():
        for pod in pods:
            sg = topo.gateway(pod)
            view.accept_prefix(sg, prefix, topo.port(sg, pod), topo.mac(pod, 0), now)
    return view


def fibs_by_key(view):
    fibs, _ribs = view.fibs()
    return {s: {names.prefix_key(p): r for p, r in f.items()} for s, f in fibs.items()}


def core_without(topo, edge=None, node=None):
    g = topo.core_graph()
    if edge:
        g.remove_edge(*edge)
    if node:
        g.remove_node(node)
    return g


# -- the view -------------------------------------------------------------------------
def test_a_full_view_gives_every_switch_the_reference_fib():
    view = full_view()
    assert len(view.links) == FIG2.core_graph().number_of_edges()
    assert fibs_by_key(view) == expected_fibs(FIG2)
    assert fibs_by_key(view)["sg1"][names.prefix_key(names.switch_name("sg1"))] == \
        Route(special=PUNT)                               # its own name: to the controller


def test_a_link_heard_one_way_only_is_no_link():
    view = View(switch_confs(FIG2), KEY, 0.08, 0.24)
    for s in ("sg1", "sr1"):
        view.switch_up(s, 0.0)
    frame = discovery_frame(view.switches["sg1"], 2, KEY, 1, 80, 240)
    view.on_discovery("sr1", 3, frame, 0.0)
    assert view.links == frozenset()
    back = discovery_frame(view.switches["sr1"], 3, KEY, 2, 80, 240)
    view.on_discovery("sg1", 2, back, 0.0)
    (ln,) = view.links
    assert {(ln.a, ln.a_port), (ln.b, ln.b_port)} == {("sg1", 2), ("sr1", 3)}


def test_silence_past_the_dead_interval_removes_the_link_and_reroutes():
    view = full_view()
    t = 0.0
    while t < 0.5:                   # every link heard each hello but sg1-sr3's
        t += 0.08
        discover_all(view, FIG2, t, skip=[("sg1", "sr3")])
        view.tick(t)
    assert len(view.links) == FIG2.core_graph().number_of_edges() - 1
    assert fibs_by_key(view) == expected_fibs(FIG2, core_without(FIG2, ("sg1", "sr3")))


def test_a_late_tick_is_a_stall_not_silence():
    view = full_view()
    view.tick(0.0)
    view.tick(1.0)                   # the controller got no CPU for a second
    assert len(view.links) == FIG2.core_graph().number_of_edges()
    assert view.counters["stalls"] == 1


def test_carrier_loss_removes_the_link_at_once():
    view = full_view()
    view.port_status("sg1", FIG2.port("sg1", "sr3"), False, 0.01)
    assert fibs_by_key(view) == expected_fibs(FIG2, core_without(FIG2, ("sg1", "sr3")))
    view.port_status("sg1", FIG2.port("sg1", "sr3"), True, 0.02)
    discover_all(view, FIG2, 0.03)
    assert fibs_by_key(view) == expected_fibs(FIG2)


def test_a_switch_whose_session_broke_leaves_the_graph():
    view = full_view()
    view.switch_down("sr3", 1.0)
    fibs = fibs_by_key(view)
    assert "sr3" not in fibs
    want = expected_fibs(FIG2, core_without(FIG2, node="sr3"))
    assert fibs == {s: f for s, f in want.items() if s != "sr3"}


def test_a_withdrawn_prefix_leaves_every_fib_and_a_replica_takes_over():
    view = full_view()
    assert view.withdraw_prefix("sg4", "/B/4", 1.0)
    assert view.withdraw_prefix("sg4", "/B", 1.0)
    assert not view.withdraw_prefix("sg4", "/B", 1.0)
    prefixes = served_prefixes(FIG2)
    del prefixes["/B/4"]
    prefixes["/B"] = {"pod1"}
    assert fibs_by_key(view) == expected_fibs(FIG2, prefixes=prefixes)


@pytest.mark.parametrize("mangle, counter", [
    (lambda f: f[:-3] + bytes([f[-3] ^ 1]) + f[-2:], "rx_auth_fail"),
    (lambda f: f[:20], "rx_malformed_frame"),
])
def test_bad_discovery_frames_are_counted_and_change_nothing(mangle, counter):
    view = View(switch_confs(FIG2), KEY, 0.08, 0.24)
    for s in ("sg1", "sr1"):
        view.switch_up(s, 0.0)
    good = discovery_frame(view.switches["sg1"], 2, KEY, 1, 80, 240)
    view.on_discovery("sr1", 3, mangle(good), 0.0)
    assert view.heard == {} and view.counters[counter] == 1
    forged = discovery_frame(view.switches["sg1"], 2, b"not the key", 1, 80, 240)
    view.on_discovery("sr1", 3, forged, 0.0)
    view.on_discovery("sg1", 1, good, 0.0)          # on a pod port
    assert view.heard == {}
    # the forged frame is one more auth failure (the mangled one may have been one)
    assert view.counters["rx_auth_fail"] == (2 if counter == "rx_auth_fail" else 1)
    assert view.counters["rx_ctrl_on_pod_port"] == 1


def test_pod_prefixes_only_behind_pod_ports_and_never_switch_names():
    view = View(switch_confs(FIG2), KEY, 0.08, 0.24)
    with pytest.raises(ValueError, match="not a pod-facing port"):
        view.accept_prefix("sg1", "/A/9", 2, "02:00:00:00:00:01", 0.0)
    with pytest.raises(ValueError, match="reserved"):
        view.accept_prefix("sg1", names.switch_name("sg2"), 1, "02:00:00:00:00:01", 0.0)
    with pytest.raises(ValueError, match="not an SG"):
        view.accept_prefix("sr1", "/A/9", 1, "02:00:00:00:00:01", 0.0)
    assert view.prefixes["sg1"] == {}


def test_the_view_refuses_a_second_name_for_a_switch_key_until_the_first_is_gone():
    from tests.support.attacker import crc32_twin
    view = View(switch_confs(FIG2), KEY, 0.08, 0.24)
    mac = "02:00:00:00:00:01"
    view.accept_prefix("sg1", "/B/1", 1, mac, 0.0)
    view.accept_prefix("sg4", "/B/4", 1, mac, 0.0)
    twin = f"/{crc32_twin('B')}/4"
    with pytest.raises(names.KeyCollision, match="switch key of /B"):
        view.accept_prefix("sg2", twin, 1, mac, 0.0)
    assert twin not in view.prefixes["sg2"]
    view.accept_prefix("sg1", "/B/4", 1, mac, 0.0)             # anycast: one name, two SGs
    view.withdraw_prefix("sg4", "/B/4", 0.0)
    view.withdraw_prefix("sg1", "/B/4", 0.0)
    with pytest.raises(names.KeyCollision):                     # /B/1 still holds /B's key
        view.accept_prefix("sg2", twin, 1, mac, 0.0)
    view.withdraw_prefix("sg1", "/B/1", 0.0)
    view.accept_prefix("sg2", twin, 1, mac, 0.0)
    assert twin in view.prefixes["sg2"]


def test_pods_of_one_service_behind_one_sg_share_its_prefix_in_the_fib():
    # the gateway's rule (first accepted holds, the others share) on the view
    from topologies.generate import from_spec
    topo = from_spec("fig2:pods=8,instances=16,services=4")
    view = View(switch_confs(topo), KEY, 0.08, 0.24)
    for s in topo.switches():
        view.switch_up(s, 0.0)
    discover_all(view, topo, 0.0)
    shared = 0
    for prefix, pods in served_prefixes(topo).items():
        by_sg: dict = {}
        for pod in sorted(pods):
            by_sg.setdefault(topo.gateway(pod), []).append(pod)
        for sg, ps in by_sg.items():
            view.accept_prefix(sg, prefix, topo.port(sg, ps[0]), topo.mac(ps[0], 0), 0.0)
            view.set_local_sharers(sg, prefix, {topo.port(sg, p): topo.mac(p, 0)
                                                for p in ps[1:]}, 0.0)
            shared += len(ps) > 1
    assert shared                                  # the population has such services
    assert fibs_by_key(view) == expected_fibs(topo)


def test_switches_file_errors_are_clear(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{"sg1": {"grpc_addr": "127.0.0.1:1"}}')
    with pytest.raises(ValueError, match="grpc_addr and device_id"):
        load_switches(p)
    p.write_text('{"switches": {"sg1": {"grpc_addr": "127.0.0.1:1", "device_id": 1}}}')
    assert load_switches(p) == {"sg1": ("127.0.0.1:1", 1)}


# -- the process, against fake switches ---------------------------------------------------
class FakeFabric:
    """One fake P4Runtime server per switch; packet-outs on a core port come
    out of the neighbour's fake as packet-ins (reason: control), unless the
    link is cut; packet-outs on pod ports are kept for the test to read."""

    def __init__(self, topo):
        self.topo = topo
        info = load_p4info(P4INFO)
        md = {c.preamble.name: {m.name: (m.id, m.bitwidth) for m in c.metadata}
              for c in info.controller_packet_metadata}
        self.pin, self.pout = md["packet_in"], md["packet_out"]
        self.servers = {s: FakeServer() for s in topo.switches()}
        self.fakes, self.addrs = {}, {}
        self.cut: set[frozenset] = set()
        self.to_pods: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.threads = []

    def __enter__(self):
        for s, srv in self.servers.items():
            self.fakes[s], self.addrs[s] = srv.__enter__()
        for s in self.servers:
            t = threading.Thread(target=self._carry, args=(s,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        for srv in self.servers.values():
            srv.__exit__(*exc)

    def punt(self, switch, port, payload, reason):
        mid, bw = self.pin[N.PACKET_IN_INGRESS_PORT]
        rid, rbw = self.pin[N.PACKET_IN_REASON]
        self.fakes[switch].send_packet_in(payload, {mid: _canonical(port, bw),
                                                    rid: _canonical(reason, rbw)})

    def _carry(self, s):
        eid = self.pout["egress_port"][0]
        while not self.stop.is_set():
            try:
                po = self.fakes[s].packet_outs.get(timeout=0.1)
            except queue.Empty:
                continue
            port = next((int.from_bytes(m.value, "big") for m in po.metadata
                         if m.metadata_id == eid), 0)
            nb = self.topo.neighbour_on(s, port)
            if nb is None:
                continue
            if self.topo.kind(nb) == "pod":
                self.to_pods.put((s, port, po.payload))
            elif frozenset({s, nb}) not in self.cut:
                self.punt(nb, self.topo.port(nb, s), po.payload, defs.PUNT_CONTROL)


@pytest.fixture
def fabric():
    with FakeFabric(FIG2) as f:
        yield f


@pytest.fixture
def spa():
    idents = {p: Identity.generate() for p in FIG2.pods()}
    addr = f"127.0.0.1:{free_port()}"
    server, _service = serve(registry_for(FIG2, {p: i.public_raw for p, i in idents.items()}),
                             addr)
    try:
        yield addr, idents
    finally:
        server.stop(grace=None)


def run_controller(fabric, spa_addr=None, grace_s=0.0):
    ctl = Controller(switch_confs(FIG2), {s: (a, FIG2.device_id(s)) for s, a in
                                          fabric.addrs.items()},
                     KEY, hello_ms=50, dead_ms=500, grace_s=grace_s, lease_s=120,
                     spa_addrs=[spa_addr] if spa_addr else [], carrier_fn=lambda intf: True)
    t = threading.Thread(target=ctl.run, daemon=True)
    t.start()
    return ctl, t


def wait_connected(ctl, timeout=10.0):
    deadline = time.monotonic() + timeout
    while ctl.view.connected != set(FIG2.switches()):
        assert time.monotonic() < deadline, f"connected to {sorted(ctl.view.connected)} only"
        time.sleep(0.02)


def announce_all(fabric, idents):
    for pod in FIG2.pods():
        sg = FIG2.gateway(pod)
        for prefix, pods in served_prefixes(FIG2).items():
            if pod in pods:
                frame = idents[pod].announcement(prefix, src=FIG2.instances(pod)[0]) \
                    .encode(eth_src=FIG2.mac(pod, 0))
                fabric.punt(sg, FIG2.port(sg, pod), frame, defs.PUNT_ANNOUNCE)


@pytest.mark.skipif(not P4INFO.exists(), reason="needs p4src/build/dmsc.p4info.txtpb")
def test_the_controller_programs_every_switch_from_discovery_and_announcements(fabric, spa):
    spa_addr, idents = spa
    ctl, t = run_controller(fabric, spa_addr)
    reader = None
    try:
        wait_connected(ctl)
        announce_all(fabric, idents)
        reader = FibReader({s: (a, FIG2.device_id(s)) for s, a in fabric.addrs.items()})
        wait_converged(reader, expected_fibs(FIG2), timeout=30)
        sent = sum(len(pods) for pods in served_prefixes(FIG2).values())
        answers = [fabric.to_pods.get(timeout=15) for _ in range(sent)]   # one per announcement
        assert {codec.decode(payload).type for _sg, _p, payload in answers} == \
            {defs.TYPE_ANNOUNCE_ACK}
        assert fabric.to_pods.empty()
        # a forged announcement: refused by the SPA, counted, nacked, no FIB changed
        forged = idents["pod2"].announcement("/B/4").encode(eth_src=FIG2.mac("pod2", 0))
        fabric.punt("sg2", 1, forged, defs.PUNT_ANNOUNCE)
        sg, port, payload = fabric.to_pods.get(timeout=15)
        assert (sg, port, codec.decode(payload).type) == ("sg2", 1, defs.TYPE_ANNOUNCE_NACK)
        st = {a.router: a for a in ctl.state().switches}
        assert st["sg2"].counters["announce_refused_key_not_authorized"] == 1
        # a link cut: its discovery frames stop, it leaves the view, FIBs are rerouted
        fabric.cut.add(frozenset({"sg1", "sr3"}))
        wait_converged(reader, expected_fibs(FIG2, core_without(FIG2, ("sg1", "sr3"))),
                       timeout=30)
        fabric.cut.clear()
        wait_converged(reader, expected_fibs(FIG2), timeout=30)
    finally:
        if reader is not None:
            reader.close()
        ctl.stop()
        t.join(10)
    assert not t.is_alive()


@pytest.mark.skipif(not P4INFO.exists(), reason="needs p4src/build/dmsc.p4info.txtpb")
def test_a_restarted_controller_deletes_nothing_during_its_grace(fabric):
    ctl, t = run_controller(fabric)
    try:
        wait_connected(ctl)
        for prefix, pods in served_prefixes(FIG2).items():
            for pod in pods:
                sg = FIG2.gateway(pod)
                ctl.override(sg, prefix, FIG2.port(sg, pod), FIG2.mac(pod, 0))
        with FibReader({s: (a, FIG2.device_id(s)) for s, a in fabric.addrs.items()}) as r:
            wait_converged(r, expected_fibs(FIG2), timeout=30)
    finally:
        ctl.stop()
        t.join(10)
    # a new controller: the pods have not re-announced yet; within its grace
    # the switches keep every route (a wiped FIB would drop the traffic)
    ctl, t = run_controller(fabric, grace_s=60)
    try:
        with FibReader({s: (a, FIG2.device_id(s)) for s, a in fabric.addrs.items()}) as r:
            deadline = time.monotonic() + 10
            while not (len(ctl.view.links) == FIG2.core_graph().number_of_edges() and ctl.written_version == ctl.view.version):
                assert time.monotonic() < deadline, "the view never settled"
                time.sleep(0.02)
            assert not ctl.deletes_allowed
            for s in FIG2.switches():
                assert r.read(s) == expected_fibs(FIG2)[s], s
            with ctl.lock:                      # the grace is over: a full sync
                ctl.deletes_allowed = True
                ctl.dirty |= set(FIG2.switches())
            ctl.wake()
            wait_converged(r, expected_fibs(FIG2, prefixes={}), timeout=30)   # own names only
    finally:
        ctl.stop()
        t.join(10)
