"""The mesh baseline's IPv4 program (p4src/mesh/ipv4.p4) on one BMv2 switch with
four veth ports: routes written by controller.mesh.ipv4_routes.Ipv4Routes,
IPv4 frames in, frames out. LPM, ECMP by 5-tuple, the rewrite (MACs, TTL,
checksum) and the drops by reason."""
from __future__ import annotations

import collections

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from controller.mesh.ipv4_routes import Ipv4Routes
from controller.switch.artifacts import MESH_JSON, MESH_P4INFO
from controller.switch.p4rt import SwitchConnection
from tests.bmv2.conftest import peer_mac, port_mac
from topologies.emu.apps.bmv2_app import Bmv2Process
from topologies.emu.veth import VethPairs
from topologies.topo import NextHop
from traffic.wire.link import RawLink

pytestmark = pytest.mark.bmv2

PORTS = (1, 2, 3, 4)
ETH_IPV4 = 0x0800


def hop(port):
    return NextHop(port, peer_mac(port))


class Rig:
    def __init__(self, sw, links):
        self.sw, self.links, self.routes = sw, links, Ipv4Routes(sw)

    def send(self, port, frame):
        self.links[port].send(bytes(frame))

    def arrivals(self, timeout=0.3) -> dict[int, list]:
        """Frames out of each port within ``timeout`` of the last send."""
        return {p: [Ether(raw) for raw in self.links[p].drain(timeout)] for p in PORTS}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("bmv2-mesh")
    with VethPairs(len(PORTS), prefix="dm") as veths, \
            Bmv2Process("mesh", 1, {p: veths.switch_side(p) for p in PORTS},
                        log_dir=log_dir, log_level="info") as proc:
        sw = SwitchConnection("mesh", proc.grpc_addr, 1).connect()
        links = {}
        try:
            sw.set_pipeline(str(MESH_P4INFO), str(MESH_JSON))
            r = Ipv4Routes(sw)
            sw.write(r.port_macs({p: port_mac(p) for p in PORTS}))
            links = {p: RawLink(veths.host_side(p), ETH_IPV4) for p in PORTS}
            yield Rig(sw, links)
            assert proc.alive(), "the switch died during the tests"
        finally:
            for link in links.values():
                link.close()
            sw.close()


@pytest.fixture
def routes(rig):
    rig.routes.sync({})
    rig.arrivals(0.05)
    yield rig.routes
    rig.routes.sync({})


def pkt(dst, src="10.0.1.1", sport=40000, dport=8080, ttl=64, proto=TCP):
    return (Ether(src=peer_mac(1), dst=port_mac(1)) / IP(src=src, dst=dst, ttl=ttl)
            / proto(sport=sport, dport=dport) / (b"x" * 20))


def test_longest_prefix_wins_and_the_frame_is_rewritten(rig, routes):
    assert routes.sync({"10.0.4.0/24": {hop(2)}, "10.0.4.7/32": {hop(3)}}) == \
        {"insert": 2, "modify": 0, "delete": 0}
    assert routes.read() == {"10.0.4.0/24": {hop(2)}, "10.0.4.7/32": {hop(3)}}
    rig.send(1, pkt("10.0.4.9"))
    rig.send(1, pkt("10.0.4.7"))
    got = rig.arrivals()
    assert [len(got[p]) for p in PORTS] == [0, 1, 1, 0]
    for port, dst in ((2, "10.0.4.9"), (3, "10.0.4.7")):
        f = got[port][0]
        assert f[IP].dst == dst
        assert (f.dst, f.src) == (peer_mac(port), port_mac(port))
        assert f[IP].ttl == 63
        want = f[IP].chksum
        del f[IP].chksum
        assert IP(bytes(f[IP])).chksum == want, "header checksum not updated with the TTL"


def _ports_by_flow(rig, frames, proto) -> dict[int, list[int]]:
    """Send ``frames``; {source port: [switch ports it came out of]}."""
    for f in frames:
        rig.send(1, f)
    out = collections.defaultdict(list)
    for port, got in rig.arrivals().items():
        for f in got:
            out[f[proto].sport].append(port)
    return out


def test_ecmp_spreads_flows_over_the_group_and_keeps_each_flow_on_one_port(rig, routes):
    routes.sync({"10.0.4.0/24": {hop(2), hop(3), hop(4)}})
    flows = range(40000, 40060)
    # each flow twice: both copies must leave by the same port
    seen = _ports_by_flow(rig, [pkt("10.0.4.1", sport=s) for s in flows for _ in (1, 2)], TCP)
    assert set(seen) == set(flows), "some frames were lost"
    for sport, ports in seen.items():
        assert len(ports) == 2 and ports[0] == ports[1], (sport, ports)
    assert collections.Counter(p[0] for p in seen.values()).keys() == {2, 3, 4}
    # UDP flows are hashed by their ports too
    udp = _ports_by_flow(rig, [pkt("10.0.4.1", sport=s, proto=UDP) for s in range(50000, 50030)],
                         UDP)
    assert {p for ports in udp.values() for p in ports} == {2, 3, 4}


def test_a_route_changed_in_place_moves_traffic(rig, routes):
    routes.sync({"10.0.4.0/24": {hop(2)}})
    assert routes.sync({"10.0.4.0/24": {hop(4)}}) == {"insert": 0, "modify": 1, "delete": 0}
    rig.send(1, pkt("10.0.4.1"))
    got = rig.arrivals()
    assert len(got[4]) == 1 and not got[2]


def test_a_miss_and_an_expiring_ttl_are_dropped_and_counted(rig, routes):
    routes.sync({"10.0.4.0/24": {hop(2)}})
    before = routes.drops()
    rig.send(1, pkt("10.0.9.1"))
    rig.send(1, pkt("10.0.4.1", ttl=1))
    got = rig.arrivals()
    assert not any(got.values()), got
    after = routes.drops()
    assert after["no_route"] - before["no_route"] == 1
    assert after["ttl"] - before["ttl"] == 1
