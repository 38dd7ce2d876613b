"""The run-time actions (dmsc/actions/) on Figure 2: each does
what its help says, seen from the switches (FIBs read over P4Runtime), the
agents and the pods. The experiment steps and the interactive CLI run these
same functions. Each test leaves the network as it found it."""
from __future__ import annotations

import time

import pytest

from dmsc.actions import ActionError, run
from dmsc.converge import FibReader, expected_fibs, wait_converged
from tests.support.wait import poll
from topologies.expected import served_prefixes
from traffic.wire import names

pytestmark = pytest.mark.mininet


def core_without_edge(topo, a, b):
    g = topo.core_graph()
    g.remove_edge(a, b)
    return g


def test_link_down_reroutes_and_link_up_restores(net, reader):
    topo = net.topo
    assert run(net, "link_down", a="sg1", b="sr3") == {"link": "sg1-sr3", "state": "down"}
    try:
        wait_converged(reader, expected_fibs(topo, core_without_edge(topo, "sg1", "sr3")),
                       timeout=10)
        out = run(net, "call", pod="pod1", dst="/B/4")
        assert out["ok"] and out["from"] == "/B/4" and out["hops"] == 4, out
    finally:
        run(net, "link_up", a="sg1", b="sr3")
    wait_converged(reader, expected_fibs(topo), timeout=10)
    assert run(net, "call", pod="pod1", dst="/B/4")["hops"] == 3


def test_kill_and_restart_a_switch(net, reader):
    topo = net.topo
    run(net, "kill_switch", switch="sr3")
    try:
        assert not net.switch("sr3").alive()
        with pytest.raises(ActionError, match="no link sg1-sg2; links of sg1: "):
            run(net, "link_down", a="sg1", b="sg2")
        g = topo.core_graph()
        g.remove_node("sr3")
        with FibReader.for_net(net, [s for s in topo.switches() if s != "sr3"]) as r2:
            wait_converged(r2, expected_fibs(topo, g), timeout=10)
    finally:
        run(net, "restart_switch", switch="sr3")
    with pytest.raises(ActionError, match="switch sr3 is running"):
        run(net, "restart_switch", switch="sr3")
    with FibReader.for_net(net) as r3:
        wait_converged(r3, expected_fibs(topo), timeout=20)


def test_kill_and_restart_an_agent(net, reader):
    pid = net.agents["sr1"].pid
    assert run(net, "kill_agent", switch="sr1")["pid"] == pid
    try:
        assert not net.agents["sr1"].alive()
        with pytest.raises(ActionError, match="the agent of sr1 is not running"):
            run(net, "lsdb", switch="sr1")
    finally:
        out = run(net, "restart_agent", switch="sr1")
    assert out["state"] == "running" and out["pid"] != pid
    wait_converged(reader, expected_fibs(net.topo), timeout=15)
    assert {n["router"] for n in run(net, "lsdb", switch="sr1")["neighbours"]
            if n["state"] == "up"} == set(net.topo.core_graph().neighbors("sr1"))


def test_reads_of_a_switch(net):
    f = run(net, "fib", switch="sg1")
    by = {e["prefix"]: e for e in f["entries"]}
    assert set(served_prefixes(net.topo)) <= set(by)
    assert [h["neighbour"] for h in by["/B/4"]["next_hops"]] == ["sr3"]
    r = {e["prefix"]: e for e in run(net, "rib", switch="sg1")["routes"]}
    assert [h["neighbour"] for h in r["/B/4"]["next_hops"]] == ["sr3"]
    lsdb = run(net, "lsdb", switch="sg1")
    assert {x["origin"] for x in lsdb["lsas"]} == set(net.topo.switches())
    assert run(net, "policy", switch="sg1")["policies"] == []       # no SCSC here


def test_a_probe_records_the_forward_path(net):
    out = run(net, "probe", pod="pod1", dst="/B/4")
    assert out["ok"] and out["from"] == "/B/4", out
    assert [h["switch"] for h in out["hops"]] == ["sg1", "sr3", "sg4"]


def test_a_failed_call_is_a_result_not_an_error(net):
    out = run(net, "call", pod="pod1", dst="/nobody/1")
    assert not out["ok"] and out["error"].startswith("no_route"), out


def test_degrade_slows_the_pods_answers_and_0_restores(net):
    run(net, "degrade", pod="pod4", service_ms=400)
    try:
        slow = run(net, "call", pod="pod1", dst="/B/4", timeout_s=0.2)
        assert not slow["ok"] and "no reply" in slow["error"], slow
    finally:
        run(net, "degrade", pod="pod4", service_ms=0)
    deadline = time.monotonic() + 5
    while not (out := run(net, "call", pod="pod1", dst="/B/4", timeout_s=0.2))["ok"]:
        assert time.monotonic() < deadline, out     # the late answers drain first


def test_announce_then_withdraw_a_prefix_from_a_pod(net, reader):
    topo = net.topo
    net.authorize("/A/9", ["pod1"])              # a new instance: the operator grants it
    out = run(net, "announce", pod="pod1", prefix="/A/9")
    assert out["state"] == "accepted", out
    with_9 = {**served_prefixes(topo), "/A/9": {"pod1"}}
    wait_converged(reader, expected_fibs(topo, prefixes=with_9), timeout=10)
    assert run(net, "call", pod="pod3", dst="/A/9", method="whoami")["result"] == \
        {"instance": "/A/9"}
    out = run(net, "withdraw", pod="pod1", prefix="/A/9")
    assert out["state"] == "withdrawn", out
    # well within the lease (6 s): the signed withdrawal, not the expiry, removed it
    wait_converged(reader, expected_fibs(topo), timeout=3)

    def sg1_counters():
        with net.admin("sg1") as c:
            return dict(c.state().counters)
    c0 = sg1_counters()
    # a whole renewal period of pod1's since the withdrawal: 5 renewals of its 4
    # other prefixes (each renewed once a period), so one of them twice; /A/9,
    # due once within that period had the pod not withdrawn it, was not announced
    poll(lambda: sg1_counters().get("announce_renewed", 0) - c0.get("announce_renewed", 0) >= 5,
         net.lease_s + 2, "pod1 renewing its other prefixes")
    with net.admin("sg1") as c:
        st = c.state()
    assert "/A/9" not in {h.prefix for h in st.held}
    assert st.counters.get("announce_accepted", 0) == c0.get("announce_accepted", 0)
    assert names.prefix_key("/A/9") not in reader.read("sg3")
    # an instance of the topology, withdrawn and announced again
    run(net, "withdraw", pod="pod4", prefix="/B/4")
    without = {p: pods for p, pods in served_prefixes(topo).items() if p != "/B/4"}
    wait_converged(reader, expected_fibs(topo, prefixes=without), timeout=3)
    assert run(net, "announce", pod="pod4", prefix="/B/4")["state"] == "accepted"
    wait_converged(reader, expected_fibs(topo), timeout=10)


def test_a_hijack_is_refused_and_changes_no_fib(net):
    out = run(net, "hijack", pod="pod2", prefix="/B/4")
    assert out["refused"] and out["reason"] == "key_not_authorized", out
    assert out["spa_state"] == "invalid" and out["fibs_changed"] == []
    forged = run(net, "hijack", pod="pod4", prefix="/B/7", how="bad_signature", watch_s=0.2)
    assert forged["refused"] and forged["reason"] == "bad_signature", forged
    twin = run(net, "hijack", pod="pod2", prefix="/B/4", how="collision", watch_s=0.2)
    assert twin["refused"] and twin["reason"] == "key_collision", twin
    assert twin["prefix"] != "/B/4" and twin["prefix"].endswith("/4") and twin["fibs_changed"] == []


def test_spoof_is_dropped_at_the_sg_and_counted(net):
    out = run(net, "spoof", pod="pod2", src="/A/1", dst="/B/4", count=20)
    assert out == {**out, "sent": 20, "answered": 0, "sg": "sg2", "src_not_held": 20,
                   "refused": True}, out


def test_kill_and_restart_the_spa(net, reader):
    net.authorize("/C/9", ["pod2"])              # kept in the registry file over the restart
    run(net, "kill_spa")
    try:
        assert not net.spas[0].alive()
        out = run(net, "announce", pod="pod2", prefix="/C/9", wait_s=1.0)
        assert out["state"] == "pending", out          # the SG fails closed: no verdict yet
    finally:
        run(net, "restart_spa")
    net.wait_announced(["pod2"], timeout=15)                   # accepted once the SPA is back
    with_9 = {**served_prefixes(net.topo), "/C/9": {"pod2"}}
    wait_converged(reader, expected_fibs(net.topo, prefixes=with_9), timeout=10)
    run(net, "withdraw", pod="pod2", prefix="/C/9")
    wait_converged(reader, expected_fibs(net.topo), timeout=10)


def test_kill_and_restart_the_scsc(net):
    with pytest.raises(ActionError, match="without an SCSC"):
        run(net, "kill_scsc")
    net.start_scsc()
    try:
        run(net, "kill_scsc")
        assert not net.scsc.alive()
        run(net, "restart_scsc")
        assert net.scsc.alive()
        with pytest.raises(ActionError, match="the SCSC is running"):
            run(net, "restart_scsc")
    finally:
        net.stop_scsc()
