"""The distributed control plane on Figure 2: agents, LSAs, SPF, FIBs on BMv2.

No test writes a FIB: the agents do. Every expectation comes from
topologies.routes over topologies/fig2.yaml (an independent computation) and
every FIB is read back from the switches over P4Runtime.
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from controller.tools.converge import FibReader, expected_fibs, wait_converged
from controller.switch.tables import Fib
from controller.routing.route import Route
from topologies.topo import NextHop
from controller.proto.routing_pb2 import Lsa, PrefixEntry
from controller.routing.router import MAX_PREFIXES_PER_FRAGMENT, auth_code
from tests.conftest import ROOT
from topologies.emu.net import DmscNet
from topologies.expected import served_prefixes
from topologies.topo import Topology
from traffic.wire import codec, defs, layers, names
from traffic.wire.link import RawLink

pytestmark = pytest.mark.mininet
FIG2 = ROOT / "topologies" / "fig2.yaml"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    topo = Topology.load(FIG2)
    n = DmscNet(topo, tmp_path_factory.mktemp("fig2-agents"))
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


def _load(net, pod, src, dst, count, interval=0.01, timeout=0.2):
    """A bounded call loop in the pod's namespace (traffic.client --count)."""
    import sys
    from topologies.emu.process import py_env
    return net.host(pod).popen(
        [sys.executable, "-m", "traffic.client", "--iface", net.topo.intf_name(pod, 0),
         "--src", src, "--mac", net.topo.mac(pod, 0), "--timeout", str(timeout),
         "--count", str(count), "--interval", str(interval), dst, "echo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())


def test_agent_restart_leaves_no_stale_entry_and_traffic_keeps_flowing(net, reader):
    from controller.switch.p4rt import SwitchConnection
    topo = net.topo
    load = _load(net, "pod1", "/A/1", "/B/4", count=400)
    t_kill = time.monotonic()
    net.stop_agent("sg1", kill=True)
    try:
        # While sg1's agent is gone, pod2 leaves (withdrawing /C/2 and /C) and a
        # bogus entry appears in sg1's FIB: the restarted agent must remove all three.
        net.stop_pod("pod2")
        with SwitchConnection("sg1", net.switch("sg1").grpc_addr, net.switch("sg1").device_id,
                              election_id=(0, 95)).connect() as w:
            w.fetch_p4info()
            w.insert([Fib(w).entry(*names.prefix_key("/bogus"),
                                   Route.via([NextHop(2, "02:00:00:00:0b:03")]))])
        assert names.prefix_key("/bogus") in reader.read("sg1")
        net.start_agent("sg1")
        net.wait_agents_ready()
        # pod1 re-announces within a third of its lease: the new agent takes it back
        without_c = {p: pods for p, pods in served_prefixes(topo).items()
                     if not p.startswith("/C")}
        wait_converged(reader, expected_fibs(topo, prefixes=without_c), timeout=15)
        window_s = time.monotonic() - t_kill
        assert load.poll() is None, "the load ended before the restart did: make it longer"
        out, _ = load.communicate(timeout=60)
        during = json.loads(out)
        # The switch forwards on its FIB while its agent is away: every call
        # of a load that ran through the whole restart succeeded.
        assert during["sent"] == 400 and during["failed"] == 0, (during, window_s)
        after = json.loads(_load(net, "pod1", "/A/1", "/B/4", count=100).communicate(timeout=60)[0])
        assert after["failed"] == 0, after                     # nothing lost once back
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
        if "pod2" not in net.pods:
            net.start_pod("pod2")
    net.wait_announced(["pod2"], timeout=15)
    wait_converged(reader, expected_fibs(topo), timeout=10)


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
    key = net.key_file.read_bytes()
    mac = topo.mac("sr3", topo.port("sr3", "sg1"))
    with net.admin("sg1") as c:
        st = c.state()
        lsdb_before = {(l.origin, l.fragment, l.seq) for l in st.lsdb}
        counters_before = dict(st.counters)
    sr1_seq = max(s for o, _f, s in lsdb_before if o == "sr1")
    cases = {
        "rx_auth_fail": _lsa_frame(Lsa(origin="evil", seq=5, lifetime_ms=60000, kind="sg",
                                       prefixes=[PrefixEntry(prefix="/B/4", port=1)]),
                                   b"not the domain key", mac),
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
    assert all(v >= 1 for v in got.values()), got
    lsdb_after = {(l.origin, l.fragment) for l in st.lsdb}
    assert "evil" not in {o for o, _f in lsdb_after}
    assert lsdb_after == {(o, f) for o, f, _s in lsdb_before}
    assert net.agents["sg1"].alive()                  # the agent lives on
    wait_converged(reader, expected_fibs(topo), timeout=5)


def test_inspection_commands_show_names(net):
    import sys
    for what in ("lsdb", "rib", "fib"):
        res = subprocess.run([sys.executable, "-m", "controller.tools.cli", what, "sg1",
                              "--run-dir", str(net.run_dir)], capture_output=True, text=True,
                             cwd=str(ROOT), timeout=60)
        assert res.returncode == 0, res.stderr
        assert "/B/4" in res.stdout, res.stdout
    res = subprocess.run([sys.executable, "-m", "controller.tools.cli", "shell", "sg1",
                          "--run-dir", str(net.run_dir)], capture_output=True, text=True,
                         cwd=str(ROOT), timeout=60)
    assert "p4runtime_sh --grpc-addr 127.0.0.1:" in res.stdout


def test_unknown_name_gets_a_no_route_error_from_the_first_switch(net):
    out = net.call("pod1", "/A/1", "/nobody/here", deadline_s=2)
    assert out.get("error", "").startswith(f"no_route from {names.switch_name('sg1')}"), out
