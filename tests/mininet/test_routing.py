"""The distributed control plane on Figure 2: agents, LSAs, SPF, FIBs on BMv2.

No test writes a FIB: the agents do. Every expectation comes from
topologies.routes over topologies/fig2.yaml (an independent computation) and
every FIB is read back from the switches over P4Runtime.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from dmsc.converge import FibReader, expected_fibs, wait_converged
from controller.switch.tables import Fib
from controller.routing.route import Route
from topologies.topo import NextHop
from controller.proto.routing_pb2 import Lsa, PrefixEntry
from controller.routing.router import MAX_PREFIXES_PER_FRAGMENT, auth_code
from tests.conftest import ROOT
from topologies.expected import served_prefixes
from traffic.wire import codec, defs, layers, names
from traffic.wire.link import RawLink

pytestmark = pytest.mark.mininet


def core_without(topo, *, edge=None, node=None):
    g = topo.core_graph()
    if edge:
        g.remove_edge(*edge)
    if node:
        g.remove_node(node)
    return g


def test_cold_start_fibs_equal_spf_and_A1_reaches_B4(net, reader):
    want = expected_fibs(net.topo)
    for s in net.topo.switches():
        assert reader.read(s) == want[s], s
    out = net.call("pod1", "/A/1", "/B/4", "echo", {"k": "v"})
    assert out.get("result") == {"k": "v"} and out["from"] == "/B/4", out


def test_link_down_reroutes_and_link_up_converges_back(net, reader):
    topo = net.topo
    assert net.call("pod1", "/A/1", "/B/4")["hops"] == 3          # sg4, sr3, sg1
    net.failures.link_down("sg1", "sr3")
    try:
        wait_converged(reader, expected_fibs(topo, core_without(topo, edge=("sg1", "sr3"))),
                       timeout=10)
        out = net.call("pod1", "/A/1", "/B/4")
        assert "result" in out and out["hops"] == 4, out          # sg4, sr2, sr1, sg1
    finally:
        net.failures.link_up("sg1", "sr3")
    wait_converged(reader, expected_fibs(topo), timeout=10)
    assert net.call("pod1", "/A/1", "/B/4")["hops"] == 3          # the short path is back


def test_switch_down_reroutes_and_switch_restart_gets_its_fib_back(net, reader):
    topo = net.topo
    net.failures.kill_switch("sr3")
    try:
        others = {s: f for s, f in expected_fibs(topo, core_without(topo, node="sr3")).items()}
        with FibReader.for_net(net, [s for s in topo.switches() if s != "sr3"]) as r2:
            wait_converged(r2, others, timeout=10)
        out = net.call("pod1", "/A/1", "/B/4")
        assert "result" in out and out["hops"] == 4, out
    finally:
        net.failures.restart_switch("sr3")
    with FibReader.for_net(net) as r3:
        wait_converged(r3, expected_fibs(topo), timeout=20)    # pipeline + FIB pushed again
    assert net.call("pod1", "/A/1", "/B/4").get("hops") == 3


def _load(net, pod, src, dst, count, interval=0.01, timeout=1.0):
    """A bounded call loop in the pod's namespace (traffic.rmi_client --count)."""
    import sys
    from topologies.emu.child_processes import py_env
    return net.host(pod).popen(
        [sys.executable, "-m", "traffic.rmi_client", "--iface", net.topo.intf_name(pod, 0),
         "--src", src, "--mac", net.topo.mac(pod, 0), "--timeout", str(timeout),
         "--count", str(count), "--interval", str(interval), dst, "echo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())


def test_agent_restart_leaves_no_stale_entry_and_loses_no_transit_traffic(net, reader):
    """sr3's agent is killed and restarted while A/1 calls B/4 through sr3. The
    switch forwards on its FIB while its agent is away; its neighbours route
    around it once they stop hearing hellos, and back when it returns, to a FIB
    the new agent kept (no pipeline push, no deletes while it relearns), and
    only once it lifts its overload bit. Not one call is lost. Meanwhile pod2 leaves and a bogus entry appears in sr3's
    FIB: the restarted agent must remove both."""
    from controller.switch.p4rt import SwitchConnection
    topo = net.topo
    assert net.call("pod1", "/A/1", "/B/4")["hops"] == 3           # sg4, sr3, sg1
    load = _load(net, "pod1", "/A/1", "/B/4", count=500)
    net.stop_agent("sr3", kill=True)
    try:
        net.stop_pod("pod2")                                      # withdraws /C/2 and /C
        sw = net.switch("sr3")
        with SwitchConnection("sr3", sw.grpc_addr, sw.device_id,
                              election_id=(0, 95)).connect() as w:
            w.fetch_p4info()
            w.insert([Fib(w).entry(*names.prefix_key("/bogus"),
                                   Route.via([NextHop(2, "02:00:00:00:0b:03")]))])
        assert names.prefix_key("/bogus") in reader.read("sr3")
        assert names.prefix_key("/C/2") in reader.read("sr3")    # nobody removes it yet
        net.start_agent("sr3")
        net.wait_agents_ready()
        without_c = {p: pods for p, pods in served_prefixes(topo).items()
                     if not p.startswith("/C")}
        wait_converged(reader, expected_fibs(topo, prefixes=without_c), timeout=15)
        assert load.poll() is None, "the load ended before the restart did: make it longer"
        during = json.loads(load.communicate(timeout=60)[0])
        # not one: the restarted sr3 sets the overload bit until its FIB is
        # whole again, so nobody routes through it while it relearns (no loop)
        assert during["sent"] == 500 and during["failed"] == 0, during
        assert net.call("pod1", "/A/1", "/B/4")["hops"] == 3       # back through sr3
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
        if "pod2" not in net.pods:
            net.start_pod("pod2")
    net.wait_announced(["pod2"], timeout=15)
    wait_converged(reader, expected_fibs(topo), timeout=10)


def test_an_sg_agent_restart_keeps_its_pods_prefixes(net, reader):
    """An SG's agent killed and restarted: to its neighbours that is a dead
    router (traffic to its pods stops until it is back: no graceful-restart
    signalling), but the new agent keeps what its old LSA carried for one
    lease, so its pods' prefixes never leave the network while they re-announce."""
    topo = net.topo
    pod1 = net.pods["pod1"].proc.pid
    # pod1 frozen while its agent restarts: no renewal can race the new agent,
    # so whatever it holds for pod1 comes from its old LSA, as the draft's SG must
    os.kill(pod1, signal.SIGSTOP)
    try:
        net.stop_agent("sg1", kill=True)
        net.start_agent("sg1")
        net.wait_agents_ready()
        wait_converged(reader, expected_fibs(topo), timeout=15)   # pod1's prefixes included
        with net.admin("sg1") as c:
            st = c.state()
        assert st.counters["restart_kept"] == 4           # /A, /A/1, /B, /B/1
        assert st.counters.get("announce_accepted", 0) == 0
    finally:
        os.kill(pod1, signal.SIGCONT)
    net.wait_announced(["pod1"], timeout=15)
    with net.admin("sg1") as c:
        assert c.state().counters.get("lease_expired", 0) == 0
    want = dict.fromkeys(["/A", "/A/1", "/B", "/B/1"], net.identities["pod1"].key_id)
    deadline = time.monotonic() + net.lease_s        # pod1 renews at a third of its lease
    while True:
        with net.admin("sg1") as c:
            held = {h.prefix: h.key_id for h in c.state().held}
        if held == want or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert held == want                              # pod1's renewals took the kept ones over
    assert net.call("pod1", "/A/1", "/B/4").get("result") == {}


def _inject(net, via_switch, via_neighbour, frame: bytes):
    """Put a frame on the wire of a core link, towards ``via_neighbour``,
    as if ``via_switch`` had sent it."""
    intf = net.topo.intf_name(via_switch, net.topo.port(via_switch, via_neighbour))
    with RawLink(intf) as link:
        link.send(frame)


def _lsa_frame(lsa: Lsa, key: bytes, mac: str) -> bytes:
    body = lsa.SerializeToString()
    return bytes(layers.frame(defs.TYPE_LSA, names.switch_name(), names.switch_name("sr3"), hop_limit=1, eth_src=mac,
                            tlvs=[layers.TLV(type=codec.TLV_LSA, value=body),
                                  layers.TLV(type=codec.TLV_AUTH,
                                           value=auth_code(key, defs.TYPE_LSA, body))]))


def test_bad_lsas_on_the_wire_are_dropped_counted_and_change_nothing(net, reader):
    topo = net.topo
    from controller import keys
    secret = net.key_file.read_bytes()
    key = keys.derive(secret, keys.ROUTING)        # what the agents sign LSAs with
    mac = topo.mac("sr3", topo.port("sr3", "sg1"))
    with net.admin("sg1") as c:
        st = c.state()
        lsdb_before = {(l.origin, l.fragment, l.seq) for l in st.lsdb}
        counters_before = dict(st.counters)
    sr1_seq = max(s for o, _f, s in lsdb_before if o == "sr1")
    cases = {
        "rx_auth_fail": _lsa_frame(Lsa(origin="evil", seq=5, lifetime_ms=60000, kind="sg",
                                       prefixes=[PrefixEntry(prefix="/B/4", port=1)]),
                                   secret, mac),         # the domain secret is no key itself
        "lsa_older": _lsa_frame(Lsa(origin="sr1", seq=max(1, sr1_seq - 1), lifetime_ms=60000,
                                    kind="sr"), key, mac),
        "rx_malformed_body": bytes(layers.frame(
            defs.TYPE_LSA, names.switch_name(), "/x", hop_limit=1, eth_src=mac,
            tlvs=[layers.TLV(type=codec.TLV_LSA, value=b"\x0a\xff\xff"),
                  layers.TLV(type=codec.TLV_AUTH, value=auth_code(key, defs.TYPE_LSA, b"\x0a\xff\xff"))])),
        "rx_lsa_too_many_prefixes": _lsa_frame(Lsa(
            origin="evil", seq=5, lifetime_ms=60000, kind="sg",
            prefixes=[PrefixEntry(prefix=f"/p/{i}", port=1)
                      for i in range(MAX_PREFIXES_PER_FRAGMENT + 1)]), key, mac),
    }
    for frame in cases.values():
        _inject(net, "sr3", "sg1", frame)
    # random bytes and a truncated frame: refused by the switch itself
    _inject(net, "sr3", "sg1", bytes(range(256)))
    deadline = time.monotonic() + 5
    while True:
        with net.admin("sg1") as c:
            st = c.state()
        got = {k: st.counters.get(k, 0) - counters_before.get(k, 0) for k in cases}
        if all(v >= 1 for v in got.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got == dict.fromkeys(cases, 1), got        # each bad LSA counted once, by its reason
    lsdb_after = {(l.origin, l.fragment) for l in st.lsdb}
    assert "evil" not in {o for o, _f in lsdb_after}
    assert lsdb_after == {(o, f) for o, f, _s in lsdb_before}
    assert net.agents["sg1"].alive()                  # the agent lives on
    wait_converged(reader, expected_fibs(topo), timeout=5)


def test_inspection_commands_show_names(net):
    import sys
    for what in ("lsdb", "rib", "fib"):
        res = subprocess.run([sys.executable, "-m", "dmsc.cli", what, "sg1",
                              "--run-dir", str(net.run_dir)], capture_output=True, text=True,
                             cwd=str(ROOT), timeout=60)
        assert res.returncode == 0, res.stderr
        assert "/B/4" in res.stdout, res.stdout
    res = subprocess.run([sys.executable, "-m", "dmsc.cli", "shell", "sg1",
                          "--run-dir", str(net.run_dir)], capture_output=True, text=True,
                         cwd=str(ROOT), timeout=60)
    assert f"p4runtime_sh --grpc-addr {net.switch('sg1').grpc_addr} " in res.stdout


def test_unknown_name_gets_a_no_route_error_from_the_first_switch(net):
    out = net.call("pod1", "/A/1", "/nobody/here", deadline_s=2)
    assert out.get("error", "").startswith(f"no_route from {names.switch_name('sg1')}"), out
