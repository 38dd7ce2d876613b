"""The mesh baseline's IPv4 plan and SPF routes (controller/mesh/ipv4_routes.py)
on Figure 2, and the P4Info names the route writer uses."""

from controller.mesh import ipv4_routes as R
from controller.switch.artifacts import MESH_P4INFO
from controller.switch.p4rt import load_p4info
from topologies.topo import NextHop, Topology
from tests.conftest import ROOT

FIG2 = Topology.load(ROOT / "topologies" / "fig2.yaml")


def test_one_address_per_pod_inside_its_sgs_subnet():
    addrs = {p: R.pod_address(FIG2, p) for p in FIG2.pods()}
    assert len(set(addrs.values())) == len(addrs)
    assert str(addrs["pod1"]) == "10.0.1.1" and str(addrs["pod4"]) == "10.0.4.1"
    for p, a in addrs.items():
        assert a in R.sg_subnet(FIG2, FIG2.gateway(p))
        assert R.gateway_address(FIG2, p) in R.sg_subnet(FIG2, FIG2.gateway(p))
        assert R.gateway_address(FIG2, p) != a
        assert R.pod_of_address(FIG2, a) == p
    assert R.gateway_mac(FIG2, "pod4") == FIG2.mac("sg4", 1)


def test_sr1_splits_traffic_to_sg4_over_both_equal_cost_paths():
    routes = R.reference_routes(FIG2)
    hops = routes["sr1"]["10.0.4.0/24"]
    assert {FIG2.neighbour_on("sr1", h.port) for h in hops} == {"sr2", "sr3"}
    assert NextHop(FIG2.port("sr1", "sr2"), FIG2.mac("sr2", FIG2.port("sr2", "sr1"))) in hops


def test_each_sg_delivers_its_own_pod_by_a_host_route_and_the_rest_by_subnet():
    routes = R.reference_routes(FIG2)
    assert routes["sg4"]["10.0.4.1/32"] == {NextHop(1, FIG2.mac("pod4", 0))}
    assert "10.0.4.0/24" not in routes["sg4"]
    # every switch reaches every SG's pods: 4 subnets (3 on an SG + its own /32)
    for s in FIG2.switches():
        assert len(routes[s]) == 4, (s, routes[s])
    assert R.next_switch_path(FIG2, routes, "pod1", "pod4") == ["sg1", "sr3", "sg4", "pod4"]


def test_a_cut_link_moves_the_route_to_the_surviving_path():
    core = FIG2.core_graph()
    core.remove_edge("sg1", "sr3")
    routes = R.reference_routes(FIG2, core)
    assert R.next_switch_path(FIG2, routes, "pod1", "pod4") == [
        "sg1", "sr1", "sr2", "sg4", "pod4"]
    only_sr1 = {NextHop(FIG2.port("sg1", "sr1"), FIG2.mac("sr1", FIG2.port("sr1", "sg1")))}
    assert routes["sg1"]["10.0.4.0/24"] == only_sr1


def test_longest_prefix_wins_in_the_path_walk():
    routes = R.reference_routes(FIG2)
    # a covering /8 towards the wrong place must not beat the /24
    routes["sg1"]["10.0.0.0/8"] = frozenset({NextHop(1, FIG2.mac("pod1", 0))})
    assert R.next_switch_path(FIG2, routes, "pod1", "pod4")[-1] == "pod4"


def test_the_route_writers_names_are_in_the_mesh_p4info():
    info = load_p4info(MESH_P4INFO)
    tables = {t.preamble.name: t for t in info.tables}
    actions = {a.preamble.name: a for a in info.actions}
    assert {R.TABLE_ROUTES, R.TABLE_PORT_MAC} <= set(tables)
    assert [m.name for m in tables[R.TABLE_ROUTES].match_fields] == [R.MATCH_DST_ADDR]
    assert [m.name for m in tables[R.TABLE_PORT_MAC].match_fields] == [R.MATCH_PORT]
    assert {p.name for p in actions[R.ACTION_SET_NEXT_HOP].params} == {R.PARAM_PORT, R.PARAM_DMAC}
    assert {p.name for p in actions[R.ACTION_SET_SRC_MAC].params} == {R.PARAM_SMAC}
    counters = {c.preamble.name: c for c in info.counters}
    assert counters[R.COUNTER_DROP_REASONS].size == len(R.DROP_REASONS)
