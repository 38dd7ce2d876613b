"""Topology files -> networkx graph, and the SPF expectations built on it."""
import networkx as nx
import pytest

from tests.conftest import ROOT
from topologies.expected import path, reference_fibs, served_prefixes
from topologies.topo import NextHop
from topologies.topo import Topology, TopologyError

FIG2 = ROOT / "topologies" / "fig2.yaml"


@pytest.fixture(scope="module")
def fig2():
    return Topology.load(FIG2)


def test_fig2_is_the_drafts_figure(fig2):
    assert fig2.switches() == ["sg1", "sg2", "sg3", "sg4", "sr1", "sr2", "sr3"]
    assert fig2.pods() == ["pod1", "pod2", "pod3", "pod4"]
    assert fig2.instances("pod1") == ["/A/1", "/B/1"]
    assert fig2.instances("pod4") == ["/A/4", "/B/4"]
    assert {fig2.gateway(p) for p in fig2.pods()} == {"sg1", "sg2", "sg3", "sg4"}
    srs = ["sr1", "sr2", "sr3"]
    assert all(fig2.graph.has_edge(a, b) for a in srs for b in srs if a < b)   # triangle
    for sg in ("sg1", "sg2", "sg3", "sg4"):
        assert sum(1 for nb in fig2.graph.neighbors(sg) if fig2.kind(nb) == "sr") == 2


def test_fig2_any_two_sgs_have_two_disjoint_paths(fig2):
    core = fig2.core_graph()
    sgs = ["sg1", "sg2", "sg3", "sg4"]
    for a in sgs:
        for b in sgs:
            if a < b:
                assert nx.node_connectivity(core, a, b) >= 2, (a, b)


def test_ports_roles_and_macs(fig2):
    assert fig2.port("sg1", "pod1") == 1 and fig2.port_role("sg1", 1) == "pod"
    assert fig2.port_role("sg1", 2) == "core"
    assert fig2.neighbour_on("sr3", 6) == "sg4"
    macs = {fig2.mac(s, fig2.port(s, nb)) for s in fig2.switches() for nb in fig2.graph.neighbors(s)}
    macs |= {fig2.mac(p, 0) for p in fig2.pods()}
    assert len(macs) == 2 * fig2.graph.number_of_edges()          # all distinct


BASE = {"nodes": {"p": {"kind": "pod", "instances": ["/X/1"]}, "g": {"kind": "sg", "id": 1},
                  "r": {"kind": "sr", "id": 2}},
        "links": [["p", "g:1"], ["g:2", "r:1"]]}


def variant(**changes):
    import copy
    d = copy.deepcopy(BASE)
    for k, v in changes.items():
        d[k] = v
    return d


@pytest.mark.parametrize("data, why", [
    ({"nodes": {}}, "needs 'nodes' and 'links'"),
    (variant(nodes={**BASE["nodes"], "x": {"kind": "router"}}), "kind 'router'"),
    (variant(links=[["p", "g:1"], ["g:2", "q:1"]]), "unknown node 'q'"),
    (variant(links=[["p", "g:1"], ["g", "r:1"]]), "needs a port"),
    (variant(links=[["p", "g:1"], ["g:1", "r:1"]]), "g port 1 is used by"),
    (variant(links=[["p", "g:1"], ["g:255", "r:1"]]), "outside 1..254"),
    (variant(links=[["p", "r:1"], ["g:2", "r:2"]]), "not an SG"),
    (variant(nodes={**BASE["nodes"], "r": {"kind": "sr", "id": 1}}), "share id 1"),
    (variant(nodes={**BASE["nodes"], "p": {"kind": "pod", "instances": ["nope"]}}), "must start with"),
    (variant(links=[["p", "g:1"], {"ends": ["g:2", "r:1"], "cost": 0}]), "cost must be"),
    (variant(links=[["p", "g:1"], {"ends": ["g:2", "r:1"], "delay": "fast"}]), "not like '2ms'"),
    (variant(links=[["p", "g:1"], ["g:2", "r:1"], ["r:2", "g:3"]]), "already linked"),
])
def test_bad_topologies_are_refused_with_the_reason(data, why):
    with pytest.raises(TopologyError, match=why):
        Topology.from_dict(data, source="t.yaml")


def test_unreadable_file_is_a_topology_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [unclosed")
    with pytest.raises(TopologyError, match="bad.yaml"):
        Topology.load(bad)


def test_expected_fibs_deliver_locally_and_follow_shortest_paths(fig2):
    fibs = reference_fibs(fig2)
    assert fibs["sg4"]["/B/4"] == {NextHop(1, fig2.mac("pod4", 0))}
    assert path(fig2, fibs, "pod1", "/B/4") == ["sg1", "sr3", "sg4", "pod4"]
    assert path(fig2, fibs, "pod4", "/A/1") == ["sg4", "sr3", "sg1", "pod1"]


def test_expected_fibs_use_every_equal_cost_next_hop(fig2):
    fibs = reference_fibs(fig2)
    # sg1 -> sg3: via sr1 and via sr3, both two hops
    assert {h.port for h in fibs["sg1"]["/D/3"]} == {2, 3}


def test_anycast_service_prefix_goes_to_nearest_replica(fig2):
    fibs = reference_fibs(fig2)
    assert path(fig2, fibs, "pod1", "/A")[-1] == "pod1"     # its own replica
    assert path(fig2, fibs, "pod4", "/B")[-1] == "pod4"
    # sr3 is one hop from both replicas' SGs: ECMP over the two
    assert {fig2.neighbour_on("sr3", h.port) for h in fibs["sr3"]["/A"]} == {"sg1", "sg4"}


def test_failed_switch_reroutes_expectations(fig2):
    core = fig2.core_graph()
    core.remove_node("sr3")
    fibs = reference_fibs(fig2, core=core)
    assert path(fig2, fibs, "pod1", "/B/4") == ["sg1", "sr1", "sr2", "sg4", "pod4"]


@pytest.mark.parametrize("spec, switches", [
    ("line:8", 8), ("ring:16", 16), ("grid:4x4", 16), ("grid:8x8", 64),
    ("fat-tree:4", 20), ("fat-tree:6", 45), ("random:32", 32)])
def test_generators_give_valid_topologies_of_the_asked_size(spec, switches, tmp_path):
    from topologies.generate import from_spec
    t = from_spec(spec)
    assert len(t.switches()) == switches
    assert nx.is_connected(t.core_graph())
    assert all(t.kind(t.gateway(p)) == "sg" for p in t.pods())
    again = t.save(tmp_path / "t.yaml")                       # round trip through a file
    assert nx.utils.graphs_equal(again.graph, t.graph)
    fibs = reference_fibs(t)
    sgs = sum(t.kind(x) == "sg" for x in t.switches())          # + each SG's own name
    assert all(len(fibs[s]) == len(served_prefixes(t)) + sgs
               for s in t.switches())


def test_ring_survives_any_single_link_failure():
    from topologies.generate import ring
    t = ring(8)
    assert nx.edge_connectivity(t.core_graph()) == 2


def test_unknown_generator_is_refused():
    from topologies.generate import from_spec
    with pytest.raises(ValueError, match="unknown generator"):
        from_spec("torus:4")


def test_agent_timers_keep_100ms_hellos_for_small_networks_and_scale_for_large():
    from topologies.emu.apps.agent_app import agent_timers
    assert agent_timers(7, cores=2) == (80, 240)          # Figure 2
    assert agent_timers(8, cores=2) == (80, 240)
    assert agent_timers(16, cores=2) == (160, 480)
    assert agent_timers(64, cores=2) == (640, 1920)
    assert agent_timers(64, cores=16) == (80, 240)
    assert agent_timers(64, hello_ms=50, cores=2) == (50, 150)   # given: taken as is


def test_pod_calls_and_operator_overrides_are_checked():
    base = {"nodes": {"pod1": {"kind": "pod", "instances": ["/A/1"], "calls": ["/B"]},
                      "sg1": {"kind": "sg", "id": 1}},
            "links": [["pod1", "sg1:1"]]}
    assert Topology.from_dict(base).calls("pod1") == ["/B"]
    bad = {**base, "nodes": {**base["nodes"], "pod1": {"kind": "pod", "calls": ["B"]}}}
    with pytest.raises(TopologyError, match="pod 'pod1': calls: .*must start with '/'"):
        Topology.from_dict(bad)
    with pytest.raises(TopologyError, match="operator_overrides #0: 'sr9' is not an SG"):
        Topology.from_dict({**base, "operator_overrides": [{"sg": "sr9", "pod": "pod1",
                                                           "prefix": "/X"}]})
    with pytest.raises(TopologyError, match="operator_overrides #0: needs exactly"):
        Topology.from_dict({**base, "operator_overrides": [{"sg": "sg1"}]})


def test_copp_rates_come_from_the_file_and_bad_ones_are_refused():
    import yaml
    from topologies.topo import Copp, Topology, TopologyError
    base = yaml.safe_load((ROOT / "topologies" / "fig2.yaml").read_text())
    assert Topology.from_dict(base).copp == Copp()                  # the defaults
    t = Topology.from_dict({**base, "copp": {"announce_pps": 50, "punt_burst": 10}})
    assert (t.copp.announce_pps, t.copp.punt_burst, t.copp.punt_pps) == (50, 10, Copp().punt_pps)
    assert Topology.from_dict(t.to_dict()).copp == t.copp           # saved and loaded
    for bad, msg in (({"announce_rate": 5}, "unknown field"), ({"punt_pps": 0}, "whole number > 0"),
                     ({"punt_pps": 1.5}, "whole number > 0"), ([1], "'copp' must map")):
        with pytest.raises(TopologyError, match=msg):
            Topology.from_dict({**base, "copp": bad})


def test_a_population_spec_says_64_pods_and_1000_instances_over_100_services(tmp_path):
    """Issue 21's scale: Figure 2's switches, 64 pods (16 a SG), 1,000 instances,
    each service's instances on different pods; FIBs computable, saved and loaded."""
    from topologies.generate import from_spec
    t = from_spec("fig2:pods=64,instances=1000,services=100")
    assert len(t.pods()) == 64
    assert sorted(t.gateway(p) for p in t.pods()) == sorted(["sg1", "sg2", "sg3", "sg4"] * 16)
    insts = [i for p in t.pods() for i in t.instances(p)]
    assert len(insts) == len(set(insts)) == 1000
    by_service: dict = {}
    for p in t.pods():
        for i in t.instances(p):
            by_service.setdefault(i.split("/")[1], []).append(p)
    assert len(by_service) == 100
    assert all(len(ps) == len(set(ps)) == 10 for ps in by_service.values())
    assert set(t.switches()) == set(from_spec("fig2:pods=4,instances=4,services=4").switches())
    again = t.save(tmp_path / "t.yaml")
    assert nx.utils.graphs_equal(again.graph, t.graph)
    fibs = reference_fibs(t)
    assert all(len(fibs[s]) == 1000 + 100 + 4 for s in t.switches())   # + each SG's name
    r = from_spec("ring:8,pods=16,instances=40,services=8")
    assert len(r.pods()) == 16 and sum(len(r.instances(p)) for p in r.pods()) == 40


@pytest.mark.parametrize("spec, why", [
    ("fig2:pods=64,instances=1000", "needs all of"),
    ("fig2:pods=64,instances=10,services=100", "instances >= services"),
    ("fig2:pods=4,instances=8,services=2,replicas=2", "unknown option 'replicas'"),
    ("fig2:4", "takes no size")])
def test_a_bad_population_spec_says_what_is_wrong(spec, why):
    from topologies.generate import from_spec
    with pytest.raises(ValueError, match=why):
        from_spec(spec)
