"""A 16-switch generated topology (grid:4x4) on BMv2 in Mininet: a cold start of
the whole control plane converges, with several agents sharing a process and
packet I/O through the CPU-port veths (what bigger networks run by default);
killing one switch's agent inside a shared process is that one switch's
control plane dying, and it comes back."""
from __future__ import annotations

import networkx as nx
import pytest

from dmsc.converge import FibReader, bring_up, expected_fibs, wait_converged
from topologies.emu.apps.agent_app import HostedAgent
from topologies.emu.net import DmscNet
from topologies.generate import from_spec

pytestmark = pytest.mark.mininet


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    net = bring_up(DmscNet(from_spec("grid:4x4"), tmp_path_factory.mktemp("grid"),
                           agents_per_process=4, packet_io="cpu-port"), timeout=60)
    try:
        yield net
    finally:
        net.stop()


def test_grid_cold_start_converges_and_carries_calls(grid):
    # bring_up waited for every announcement accepted and every FIB == SPF
    assert len({a.pid for a in grid.agents.values()}) == 4          # 4 processes of 4
    with FibReader.for_net(grid) as reader:
        wait_converged(reader, expected_fibs(grid.topo), timeout=5)
    topo = grid.topo
    src, dst = topo.pods()[0], topo.pods()[-1]
    out = grid.call(src, topo.instances(src)[0], topo.instances(dst)[0])
    assert "error" not in out, out
    assert out["from"] == topo.instances(dst)[0], out
    # back across the grid on a shortest path: every switch on it (networkx over the file)
    sg_src, sg_dst = topo.gateway(src), topo.gateway(dst)
    assert out["hops"] == nx.shortest_path_length(topo.core_graph(), sg_src, sg_dst) + 1, out


def test_killing_one_shared_agent_is_that_switch_only(grid):
    topo = grid.topo
    victim = "r1_1"
    a = grid.agents[victim]
    assert isinstance(a, HostedAgent)
    mates = [n for n, b in grid.agents.items() if b.host is a.host and n != victim]
    grid.stop_agent(victim, kill=True)
    assert not a.alive() and a.host.alive()
    assert all(grid.agents[n].alive() for n in mates)
    core = topo.core_graph()
    core.remove_node(victim)                    # its neighbours route around it
    want = {s: f for s, f in expected_fibs(topo, core).items() if s != victim}
    with FibReader.for_net(grid) as reader:
        wait_converged(reader, want, timeout=30)
        grid.start_agent(victim)
        grid.wait_agents_ready()
        wait_converged(reader, expected_fibs(topo), timeout=30)
