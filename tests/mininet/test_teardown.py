"""Bringing a network down leaves nothing behind: no interface, no process.

In its own module so that no other module's network is up while it runs.
"""
import os
import subprocess

import pytest

from tests.conftest import ROOT
from topologies.emu.net import DmscNet
from topologies.topo import Topology

pytestmark = pytest.mark.mininet
FIG2 = ROOT / "topologies" / "fig2.yaml"


def test_teardown_leaves_no_interfaces_or_processes(tmp_path):
    topo = Topology.load(FIG2)
    net = DmscNet(topo, tmp_path)
    net.start()
    net.start_spa()
    net.start_agents()
    net.start_pod("pod1")
    pids = [net.switch(s).bmv2.pid for s in topo.switches()]
    pids += [a.pid for a in net.agents.values()] + [net.pods["pod1"].pid, net.spas[0].pid]
    net.stop()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not [s for s in topo.switches() if f" {s}-eth" in links]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_network_whose_interfaces_are_taken_says_so(tmp_path):
    """Leftovers of another network: a clear error, not Mininet's RTNETLINK traceback."""
    from topologies.emu.net import NetError
    subprocess.run(["ip", "link", "add", "sg1-eth2", "type", "veth", "peer", "name", "dmsc-t0"],
                   check=True)                   # (no dummy module in this kernel)
    try:
        net = DmscNet(Topology.load(FIG2), tmp_path)
        with pytest.raises(NetError, match=r"interfaces sg1-eth2 already exist.*mn -c"):
            net.start()
        net.stop()
    finally:
        subprocess.run(["ip", "link", "del", "sg1-eth2"], check=True)


def test_figure_2_runs_on_the_perf_build_of_bmv2(tmp_path):
    """`dmsc up --bmv2 perf`: the switches are the benchmarking build (no logging
    macros, -O3) and the network works the same: every announcement in every FIB,
    a call by name answered."""
    import shutil
    from dmsc.converge import FibReader, bring_up, expected_fibs
    from topologies.emu.apps.bmv2_app import BUILDS
    if shutil.which(BUILDS["perf"]) is None:
        pytest.skip("optional: no perf build of BMv2 here (make setup does not build it; "
                    "sudo python3 scripts/toolchain.py --flavour perf does)")
    net = bring_up(DmscNet(Topology.load(FIG2), tmp_path / "perf",
                           bmv2_build="perf"), timeout=30)
    try:
        assert all(net.switch(s).bmv2.binary == BUILDS["perf"] for s in net.topo.switches())
        with FibReader.for_net(net) as r:
            assert {s: r.read(s) for s in net.topo.switches()} == expected_fibs(net.topo)
        assert net.call("pod1", "/A/1", "/B/4", "whoami")["from"] == "/B/4"
    finally:
        net.stop()
