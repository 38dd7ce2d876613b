"""The centralized baseline on Figure 2: one controller process programs
every BMv2 switch (same P4 program, pods, SPA and traffic as the agents).

No agent runs and no test writes a FIB: the central controller learns links
from its discovery frames and pods from their announcements, and every
expectation comes from topologies.expected over topologies/fig2.yaml, every
FIB read back from the switches over P4Runtime. One network for the module.
"""
from __future__ import annotations

import json
import time

import pytest

from controller.switch.tables import Fib
from dmsc.converge import FibReader, bring_up, expected_fibs, wait_converged
from tests.conftest import ROOT
from topologies.emu.net import DmscNet
from topologies.topo import Topology
from traffic.wire import names

pytestmark = pytest.mark.mininet

FIG2 = ROOT / "topologies" / "fig2.yaml"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = bring_up(DmscNet(Topology.load(FIG2), tmp_path_factory.mktemp("fig2-central")),
                 timeout=30, mode="central")
    try:
        yield n
    finally:
        n.stop()


def core_without(topo, edge):
    g = topo.core_graph()
    g.remove_edge(*edge)
    return g


def announce(net, pod, *args, timeout=3.0):
    t = net.topo
    res = net.run_in(pod, ["-m", "traffic.send_announcement", "--iface", t.intf_name(pod, 0),
                           "--mac", t.mac(pod, 0), "--timeout", str(timeout), *args],
                     timeout=timeout + 20)
    return json.loads(res.stdout.strip() or json.dumps({"error": res.stderr[-400:]}))


def test_central_mode_converges_to_spf_with_no_agent(net, reader):
    topo = net.topo
    assert net.agents == {} and net.central.alive() and net.mode == "central"
    want = expected_fibs(topo)
    for s in topo.switches():
        assert reader.read(s) == want[s], s
    with net.central.client() as c:
        st = c.state()
    assert {frozenset({(ln.a, ln.a_port), (ln.b, ln.b_port)}) for ln in st.links} == \
        {frozenset({(u, topo.port(u, v)), (v, topo.port(v, u))})
         for u, v in topo.core_graph().edges}                  # learned by discovery, all of them
    held = {h.prefix: h.key_id for h in net.control_state("sg4").held}
    assert held == {p: net.identities["pod4"].key_id for p in ("/A", "/A/4", "/B", "/B/4")}


def test_calls_by_name_and_no_route_answers(net, reader):
    before = {s: Fib(c).counters() for s, c in reader.conns.items()}
    out = net.call("pod1", "/A/1", "/B/4", "whoami")
    assert out["from"] == "/B/4" and out["hops"] == 3, out       # sg4, sr3, sg1 on the way back
    key = names.prefix_key("/B/4")
    counted = {s for s, c in reader.conns.items()
               if Fib(c).counters().get(key, (0, 0))[0] > before[s].get(key, (0, 0))[0]}
    assert counted == {"sg1", "sr3", "sg4"}
    miss = net.call("pod1", "/A/1", "/nobody/1", deadline_s=0, timeout=2.0)
    assert miss["error"].startswith(f"no_route from {names.switch_name('sg1')}"), miss


def test_a_forged_announcement_is_refused_and_counted(net, reader):
    before = {s: reader.read(s) for s in net.topo.switches()}
    c0 = dict(net.control_state("sg4").counters)
    got = announce(net, "pod4", "--key", str(net.key_files["pod4"]), "--prefix", "/B/7",
                   "--bad-signature")
    assert (got["answer"], got["body"]["reason"]) == ("nack", "bad_signature"), got
    c1 = dict(net.control_state("sg4").counters)
    assert c1["announce_refused_bad_signature"] == c0.get("announce_refused_bad_signature", 0) + 1
    assert {s: reader.read(s) for s in net.topo.switches()} == before
    assert net.central.alive()


def test_a_cut_link_is_rerouted_and_its_repair_converges_back(net, reader):
    topo = net.topo
    net.failures.link_down("sg1", "sr3")
    try:
        wait_converged(reader, expected_fibs(topo, core_without(topo, ("sg1", "sr3"))),
                       timeout=10)
        out = net.call("pod1", "/A/1", "/B/4")
        assert "result" in out and out["hops"] == 4, out          # sg4, sr2, sr1, sg1
    finally:
        net.failures.link_up("sg1", "sr3")
    wait_converged(reader, expected_fibs(topo), timeout=10)
    assert net.call("pod1", "/A/1", "/B/4")["hops"] == 3


def test_a_killed_switch_leaves_the_view_and_gets_its_fib_back(net, reader):
    topo = net.topo
    net.failures.kill_switch("sr3")
    try:
        others = [s for s in topo.switches() if s != "sr3"]
        g = topo.core_graph()
        g.remove_node("sr3")
        with FibReader.for_net(net, others) as r2:
            wait_converged(r2, {s: f for s, f in expected_fibs(topo, g).items()}, timeout=10)
        with net.central.client() as c:
            assert list(c.state().disconnected) == ["sr3"]     # its session broke
        assert net.call("pod1", "/A/1", "/B/4").get("hops") == 4
    finally:
        net.failures.restart_switch("sr3")
    with FibReader.for_net(net) as r3:          # pipeline, base tables and FIB pushed again
        wait_converged(r3, expected_fibs(topo), timeout=20)
    assert net.call("pod1", "/A/1", "/B/4").get("hops") == 3


def test_killed_controller_repairs_nothing_and_a_restart_reconverges(net, reader):
    topo = net.topo
    before = {s: reader.read(s) for s in topo.switches()}
    net.stop_central(kill=True)
    net.failures.link_down("sg1", "sr3")
    try:
        # many dead intervals: a live controller would have rerouted by now
        deadline = time.monotonic() + 10 * net.dead_ms / 1000
        while time.monotonic() < deadline:
            assert {s: reader.read(s) for s in topo.switches()} == before
            time.sleep(0.2)
        out = net.call("pod1", "/A/1", "/B/4", deadline_s=0, timeout=0.5)
        assert "error" in out, out                 # still sent over the cut link: not repaired
        net.restart_central()
        wait_converged(reader, expected_fibs(topo, core_without(topo, ("sg1", "sr3"))),
                       timeout=20)
        out = net.call("pod1", "/A/1", "/B/4")
        assert out.get("hops") == 4, out
    finally:
        net.failures.link_up("sg1", "sr3")
        if not net.central.alive():
            net.restart_central()
    wait_converged(reader, expected_fibs(topo), timeout=20)
    deadline = time.monotonic() + 20
    with net.central.client() as c:
        while not c.state().deletes_allowed:       # its grace after the restart runs out
            assert time.monotonic() < deadline
            time.sleep(0.1)
    net.wait_announced(timeout=10)                 # every pod re-announced to the new one:
    wait_converged(reader, expected_fibs(topo), timeout=10)   # the full sync removed nothing

