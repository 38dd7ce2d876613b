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
