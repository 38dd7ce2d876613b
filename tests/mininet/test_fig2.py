"""Figure 2 on BMv2 in Mininet with static FIBs: the data path of calls by
name, end to end, with no control plane at all.

The test writes every switch's FIB itself, computed from topologies/fig2.yaml
with networkx (dmsc.static); the pods announce nothing.
"""
from __future__ import annotations

import pytest

from controller.switch.tables import Fib
from dmsc.static import program_static, static_routes
from tests.conftest import ROOT
from topologies.emu.net import DmscNet
from topologies.topo import Topology
from traffic.wire import names

pytestmark = pytest.mark.mininet
FIG2 = ROOT / "topologies" / "fig2.yaml"


@pytest.fixture(scope="module")
def fig2(tmp_path_factory):
    topo = Topology.load(FIG2)
    net = DmscNet(topo, tmp_path_factory.mktemp("fig2"))
    conns = {}
    try:
        net.start()
        conns = program_static(net)
        for pod in topo.pods():
            net.start_pod(pod, announce=False)
        yield net, conns
    finally:
        for c in conns.values():
            c.close()
        net.stop()




def test_fibs_read_back_equal_spf_over_the_topology(fig2):
    net, conns = fig2
    want = static_routes(net.topo)
    for name, sw in conns.items():
        got = Fib(sw).read()
        assert got == {names.prefix_key(p): r for p, r in want[name].items()}, name


def test_request_from_A1_reaches_B4_and_the_response_returns(fig2):
    net, conns = fig2
    before = {s: Fib(c).counters() for s, c in conns.items()}
    out = net.call("pod1", "/A/1", "/B/4", "echo", {"n": 1})
    assert out.get("result") == {"n": 1}, out
    assert out["from"] == "/B/4"
    assert out["hops"] == 3                              # sg4, sr3, sg1 on the way back
    moved = {}
    for s, c in conns.items():
        for k, (pk, _b) in Fib(c).counters().items():
            if pk > before[s].get(k, (0, 0))[0]:
                moved.setdefault(names.NameIndex(["/A/1", "/B/4"]).lookup(*k), []).append(s)
    # the request by /B/4's entries, the response by /A/1's, along sg1-sr3-sg4
    assert sorted(moved["/B/4"]) == ["sg1", "sg4", "sr3"]
    assert sorted(moved["/A/1"]) == ["sg1", "sg4", "sr3"]


def test_service_prefix_goes_to_the_nearest_replica(fig2):
    net, _ = fig2
    out = net.call("pod1", "/A/1", "/B", "whoami")
    assert out.get("result") == {"instance": "/B/1"}, out     # same pod, hairpin at sg1
    out = net.call("pod4", "/A/4", "/A", "whoami")
    assert out.get("result") == {"instance": "/A/4"}, out


def test_unknown_method_comes_back_as_an_error(fig2):
    net, _ = fig2
    out = net.call("pod2", "/C/2", "/B/4", "launch", deadline_s=3)
    assert "unknown_method from /B/4" in out.get("error", ""), out
