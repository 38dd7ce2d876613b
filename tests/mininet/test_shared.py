"""Two pods of one service behind one SG share its prefix; the sibling tries its luck.

Figure 2 with a fifth pod, pod5 (/B/5), behind sg1 beside pod1 (/A/1, /B/1): both
announce /B, sg1 holds it for one port and shares it with the other, and its FIB
spreads calls to /B over both pods. From pod5's namespace, with pod5's own key,
frames built by ``tests.support.attacker`` from docs/wire-format.md and docs/spa.md
alone (not the project's announce helpers):

* pod5 announces /B/1, its sibling's instance: refused (``owned_by_other``);
* pod5 withdraws /B/1 with its key: refused (``not_held``: the SG holds /B/1 for
  pod1's port and key, whatever the SPA thinks of the signature);
* pod5 withdraws /B, its own share: accepted, and /B stays in every FIB through
  pod1 (a share's withdrawal is that share's only), then pod5's pod process
  shares it again.

Meanwhile pod3's calls to /B/1 and /B are all answered, none diverted to pod5.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from dmsc.converge import FibReader, expected_fibs, wait_converged
from tests.conftest import ROOT
from tests.mininet.conftest import running
from controller.switch import p4names as N
from topologies.emu.child_processes import py_env
from traffic.wire import defs
from topologies.topo import Topology
from traffic.wire import names

pytestmark = pytest.mark.mininet


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    data = yaml.safe_load((ROOT / "topologies" / "fig2.yaml").read_text())
    data["name"] = "fig2-shared"
    data["nodes"]["pod5"] = {"kind": "pod", "instances": ["/B/5"]}
    data["links"].append(["pod5", "sg1:4"])
    yield from running(Topology.from_dict(data, "fig2 + pod5 on sg1"),
                       tmp_path_factory.mktemp("shared"))


@pytest.fixture
def reader(net):
    with FibReader.for_net(net) as r:
        yield r


def attack(net, cmd, prefix, timeout=3.0) -> dict:
    t = net.topo
    args = ["-m", "tests.support.attacker", cmd, "--iface", t.intf_name("pod5", 0),
            "--mac", t.mac("pod5", 0), "--timeout", str(timeout),
            "--key", str(net.key_files["pod5"]), "--prefix", prefix, "--src", "/B/5"]
    res = net.run_in("pod5", args, timeout=timeout + 60)
    assert res.returncode == 0, res.stderr[-1500:]
    return json.loads(res.stdout)


def calls(net, dst, count=100):
    t = net.topo
    return net.host("pod3").popen(
        [sys.executable, "-m", "traffic.rmi_client", "--iface", t.intf_name("pod3", 0),
         "--src", "/D/3", "--mac", t.mac("pod3", 0), "--timeout", "0.5", "--count", str(count),
         "--interval", "0.01", dst, "whoami"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())


def finished(p) -> dict:
    out, err = p.communicate(timeout=90)
    assert p.returncode == 0, err[-1000:]
    return json.loads(out)


def sg1_counter(net, key) -> int:
    with net.admin("sg1") as c:
        return dict(c.state().counters).get(key, 0)


def b_ports(reader) -> set[int]:
    """The pod ports sg1's FIB sends /B to."""
    key = names.prefix_key("/B")
    route = reader.read("sg1")[key]
    return {h.port for h in route.hops}


def test_the_sibling_shares_the_service_and_sg1_spreads_it(net, reader):
    assert sg1_counter(net, "announce_shared") >= 1
    assert b_ports(reader) == {1, 4}                 # pod1's port and pod5's
    states = net.announcements("pod5")
    assert states["/B"]["state"] == "accepted" and states["/B/5"]["state"] == "accepted"


def test_the_sibling_cannot_take_or_withdraw_its_siblings_instance(net, reader):
    topo = net.topo
    before = {s: reader.read(s) for s in topo.switches()}
    victim = calls(net, "/B/1")
    got = attack(net, "announce", "/B/1")
    assert (got["answer"], got["body"]["reason"]) == ("nack", "owned_by_other"), got
    refused = sg1_counter(net, "announce_refused_not_held")
    got = attack(net, "withdraw", "/B/1")
    assert (got["answer"], got["body"]["reason"]) == ("nack", "not_held"), got
    assert sg1_counter(net, "announce_refused_not_held") == refused + 1
    result = finished(victim)
    assert {s: reader.read(s) for s in topo.switches()} == before     # no FIB changed
    assert result["ok"] == result["sent"] == 100, result               # none lost
    assert result["responders"] == {"/B/1": 100}                       # none diverted


def ctrl_from_pod(reader) -> int:
    """sg1's data plane: control frames dropped because a pod port sent them."""
    return reader.conns["sg1"].read_counter(N.COUNTER_DROP_REASONS).get(
        defs.DROP_CTRL_FROM_POD, (0, 0))[0]


def neighbours(net, switch="sg1") -> list:
    with net.admin(switch) as c:
        return sorted((n.router, n.port, n.state, n.dead_interval_ms)
                      for n in c.state().neighbors)


def test_a_pod_cannot_pose_as_a_neighbour_that_asks_a_longer_dead_interval(net, reader):
    """Hellos announce their sender's dead interval, which the receiver now grants
    (relaxed hellos, docs/routing.md): a pod forging sr3's hellos with a week's dead
    interval and sg1 listed must change nothing (control frames from a pod port never
    reach the agent; they also carry no valid HMAC)."""
    topo = net.topo
    before = {s: reader.read(s) for s in topo.switches()}
    nbs = neighbours(net)
    hellos = sg1_counter(net, "rx_hello_bad_router"), sg1_counter(net, "adj_up")
    dropped = ctrl_from_pod(reader)
    victim = calls(net, "/B/1")
    t = topo
    res = net.run_in("pod5", ["-m", "tests.support.attacker", "hellos", "--iface",
                              t.intf_name("pod5", 0), "--mac", t.mac("pod5", 0),
                              "--prefix", "sr3", "--dst", "sg1", "--src", "/dmsc/sw/sr3",
                              "--count", "50", "--interval", "0.01"], timeout=60)
    assert res.returncode == 0, res.stderr[-1500:]
    assert json.loads(res.stdout)["sent"] == 50
    result = finished(victim)
    assert ctrl_from_pod(reader) == dropped + 50                       # all arrived, all dropped
    assert neighbours(net) == nbs                                      # no interval granted
    assert (sg1_counter(net, "rx_hello_bad_router"), sg1_counter(net, "adj_up")) == hellos
    assert {s: reader.read(s) for s in topo.switches()} == before     # no FIB changed
    assert result["ok"] == result["sent"] == 100, result               # none lost
    assert result["responders"] == {"/B/1": 100}                       # none diverted


def test_withdrawing_its_own_share_leaves_the_service_with_the_other_pod(net, reader):
    caller = calls(net, "/B", count=150)
    got = attack(net, "withdraw", "/B")
    assert got["answer"] == "ack", got
    result = finished(caller)
    assert result["ok"] == result["sent"] == 150, result               # /B never left
    assert set(result["responders"]) <= {"/B/1", "/B/5"}
    # pod5's pod process re-announces /B at its next renewal and shares it again
    with FibReader.for_net(net) as r:
        wait_converged(r, expected_fibs(net.topo), timeout=30)
    assert b_ports(reader) == {1, 4}
