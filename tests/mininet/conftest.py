"""Figure 2 with its whole control plane (SPA, agents, announcing pods), one
network per test module that asks for ``net``; torn down even when a test fails."""
from __future__ import annotations

import pytest

from controller.tools.converge import FibReader, expected_fibs, wait_converged
from tests.conftest import ROOT
from topologies.emu.net import DmscNet
from topologies.topo import Topology

FIG2 = ROOT / "topologies" / "fig2.yaml"


@pytest.fixture(scope="module")
def net(tmp_path_factory, request):
    topo = Topology.load(FIG2)
    n = DmscNet(topo, tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    try:
        n.start()
        n.start_control()              # SPA, agents, pods announcing
        n.wait_announced(timeout=30)
        with FibReader.for_net(n) as reader:
            wait_converged(reader, expected_fibs(topo), timeout=30)
        yield n
    finally:
        n.stop()


@pytest.fixture
def reader(net):
    with FibReader.for_net(net) as r:
        yield r
