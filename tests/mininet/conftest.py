"""Figure 2 with its whole control plane (SPA, agents, announcing pods), one
network per test module that asks for ``net``; torn down even when a test fails."""
from __future__ import annotations

import pytest

from dmsc.converge import FibReader, bring_up
from tests.conftest import ROOT
from topologies.emu.net import DmscNet
from topologies.topo import Topology

FIG2 = ROOT / "topologies" / "fig2.yaml"


@pytest.fixture(scope="module")
def net(tmp_path_factory, request):
    """Figure 2 in the distributed mode, or in the mode a module parametrizes
    indirectly (``pytest.mark.parametrize("net", [...], indirect=True, scope="module")``)."""
    mode = getattr(request, "param", "distributed")
    name = request.module.__name__.rsplit(".", 1)[-1] + ("" if mode == "distributed" else f"-{mode}")
    yield from running(Topology.load(FIG2), tmp_path_factory.mktemp(name), mode)


def running(topo, run_dir, mode="distributed"):
    """A fixture's network: SPA, agents, pods announcing, FIBs converged; torn down
    after the module, even when a test fails."""
    n = bring_up(DmscNet(topo, run_dir), timeout=30, mode=mode)
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture
def reader(net):
    with FibReader.for_net(net) as r:
        yield r
