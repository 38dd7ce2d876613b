"""The tools a user drives a running network with, on Figure 2 with probes
and the SCSC (one network for the module): the interactive CLI through its
own command interface, the live view in headless Chromium, `dmsc stats`
(frames lost before the P4 program beside the P4 drop and punt counters), and
a second `dmsc up` refused with the name of the network in the way."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest

from dmsc import stats
from dmsc.converge import FibReader, bring_up, expected_fibs, wait_converged
from dmsc.interactive import DmscCLI
from dmsc.live_view import ViewServer
from tests.conftest import ROOT
from tests.support.browser import Elements, dump_dom
from tests.support.wait import poll
from topologies.emu.net import DmscNet
from topologies.emu.child_processes import py_env
from topologies.topo import Topology

pytestmark = pytest.mark.mininet
PROBE_MS = 100


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    topo = Topology.load(ROOT / "topologies" / "fig2.yaml")
    n = bring_up(DmscNet(topo, tmp_path_factory.mktemp("fig2-tools"), probe_ms=PROBE_MS,
                         scsc_args=["--restore-s", "2"]), timeout=30)
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture(scope="module")
def cli(net):
    """The CLI on the network, fed one command at a time; ``cli.run(line)``
    returns what that command printed."""
    out = io.StringIO()
    c = DmscCLI(net, stdout=out, loop=False, width=200)

    def run(line):
        start = out.tell()
        c.onecmd(line)
        return out.getvalue()[start:]
    c.run = run
    return c


def converged(net, timeout=20):
    with FibReader.for_net(net) as r:
        wait_converged(r, expected_fibs(net.topo), timeout=timeout)


def load(net, pod, src, dst, count, interval=0.01):
    """A bounded call loop in the pod's namespace."""
    return net.host(pod).popen(
        [sys.executable, "-m", "traffic.rmi_client", "--iface", net.topo.intf_name(pod, 0),
         "--src", src, "--mac", net.topo.mac(pod, 0), "--timeout", "1",
         "--count", str(count), "--interval", str(interval), dst, "echo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())


# -- the interactive CLI -----------------------------------------------------------------
def test_cli_reads_fib_lsdb_rib_and_policy(cli):
    out = cli.run("fib sg1")
    assert "sg1: FIB read over P4Runtime" in out and "/B/4" in out and "port 3 (sr3)" in out
    out = cli.run("lsdb sr3")
    for origin in ("sg1", "sg2", "sg3", "sg4", "sr1", "sr2", "sr3"):
        assert f"│ {origin} " in out, origin
    assert "neighbours" in out and "up" in out
    out = cli.run("rib sg1")
    row = next(line for line in out.splitlines() if "│ /B/4 " in line)
    assert "port 3 -> sr3" in row
    out = cli.run("policy sg1")
    assert "sg1: SCSC policies" in out


def test_cli_call_and_probe_by_name(cli):
    out = cli.run("call pod1 /B/4")
    assert "/A/1 -> /B/4" in out and "from /B/4" in out and "3 switches" in out, out
    out = cli.run("call pod1 /Nowhere timeout_s=0.5")
    assert out.count("\n") == 1 and "/A/1 -> /Nowhere failed:" in out, out
    out = cli.run("probe pod1 /B/4")
    assert "answered by /B/4" in out, out
    path = [line.split("│")[1].strip() for line in out.splitlines()
            if line.startswith("│") and line.split("│")[1].strip().startswith("s")]
    assert path == ["sg1", "sr3", "sg4"], out


def test_cli_announce_and_withdraw_reach_every_fib(cli, net):
    net.authorize("/A/77", ["pod4"])             # a new instance: the operator grants it
    out = cli.run("announce pod4 /A/77")
    assert "pod4 announced /A/77: accepted" in out, out
    poll(lambda: "/A/77" in cli.run("fib sg2"), 10, "/A/77 in sg2's FIB")
    assert "from /A/77" in cli.run("call pod1 /A/77")
    out = cli.run("withdraw pod4 /A/77")
    assert "pod4 withdrew /A/77: withdrawn" in out, out
    poll(lambda: "/A/77" not in cli.run("fib sg2"), 10, "/A/77 gone from sg2's FIB")


def test_cli_link_down_reroutes_and_link_up_restores(cli, net):
    assert cli.run("link down sg1 sr3").strip() == "link sg1-sr3: down"
    try:
        poll(lambda: "port 2 -> sr1" in next(
            (ln for ln in cli.run("rib sg1").splitlines() if "│ /B/4 " in ln), ""), 10,
            "sg1 routes /B/4 via sr1")
        assert "4 switches" in cli.run("call pod1 /B/4")
    finally:
        assert cli.run("link up sg1 sr3").strip() == "link sg1-sr3: up"
    converged(net)


def test_cli_kill_and_restart_an_agent_and_a_switch(cli, net):
    out = cli.run("kill agent sg2")
    assert "agent sg2: killed" in out and not net.agents["sg2"].alive()
    assert cli.run("lsdb sg2").startswith("*** lsdb: ")              # one line, no agent
    out = cli.run("restart agent sg2")
    assert "agent sg2: running" in out and net.agents["sg2"].alive()
    poll(lambda: "/B/4" in cli.run("rib sg2"), 15, "the restarted agent's RIB")
    out = cli.run("kill switch sr2")
    assert "switch sr2: killed" in out and not net.switch("sr2").alive()
    out = cli.run("restart switch sr2")
    assert "switch sr2: restarted" in out and net.switch("sr2").alive()
    converged(net, timeout=30)


def test_cli_kill_and_restart_the_spa_and_the_scsc(cli, net):
    assert "spa spa: killed" in cli.run("kill spa")
    assert "spa spa: running" in cli.run("restart spa")
    assert "scsc" in cli.run("kill scsc") and not net.scsc.alive()
    assert cli.run("scsc").startswith("*** scsc: ")                  # not answering: one line
    assert "running" in cli.run("restart scsc") and net.scsc.alive()
    assert "decisions" in cli.run("scsc")
    out = cli.run("kill central")
    assert out.count("\n") == 1 and out.startswith("*** kill: ") and "central" in out


def test_cli_errors_are_one_line_and_the_network_keeps_running(cli):
    for line, says in (("fib sg9", "no switch 'sg9'"), ("call pod9 /B/4", "no pod 'pod9'"),
                       ("link down sg1 sg2", "no link sg1-sg2"),
                       ("withdraw pod1 /Z/1", "does not announce /Z/1"),
                       ("restart agent sg1", "already running")):
        out = cli.run(line)
        assert out.count("\n") == 1 and out.startswith("*** ") and says in out, (line, out)
    assert "from /B/4" in cli.run("call pod1 /B/4")


def test_cli_runs_a_script_through_mininets_loop(net, tmp_path):
    script = tmp_path / "cmds"
    script.write_text("fib sg4\nfib nosuch\ncall pod3 /D/3\n")
    out = io.StringIO()
    with open(os.devnull) as stdin:   # Mininet polls its stdin: a real file, not pytest's capture
        DmscCLI(net, stdin=stdin, stdout=out, script=str(script), width=200)   # returns after the file
    text = out.getvalue()
    assert "sg4: FIB read over P4Runtime" in text and "*** fib: " in text
    assert "from /D/3" in text


# -- the live view ---------------------------------------------------------------------------
def _link(dom, a, b):
    links = dom.with_attr("data-link")
    return links.get(f"{a}|{b}") or links[f"{b}|{a}"]


def test_view_shows_every_switch_traffic_and_a_cut_link(net, cli):
    with ViewServer(net) as v:
        busy = load(net, "pod1", "/A/1", "/B/4", count=400)
        try:
            poll(lambda: next(x for x in v.source.state()["links"]
                              if {x["a"], x["b"]} == {"sg4", "sr3"})["fps"] > 0, 10,
                 "traffic on sg4-sr3 in the view's state")
            dom = Elements(dump_dom(v.url))
        finally:
            busy.wait(timeout=60)
        nodes = dom.with_attr("data-node")
        assert set(nodes) == set(net.topo.graph.nodes)
        for s in net.topo.switches():
            assert "switch" in nodes[s]["class"] and nodes[s]["data-alive"] == "true"
        assert float(_link(dom, "sg4", "sr3")["data-fps"]) > 0
        assert _link(dom, "sg1", "sr3")["data-state"] == "up"

        cli.run("link down sg1 sr3")
        try:
            dom = Elements(dump_dom(v.url))
            cut = _link(dom, "sg1", "sr3")
            assert "cut" in cut["class"].split() and cut["data-state"] == "cut"
            assert {_link(dom, "sg1", "sr1")["data-state"]} == {"up"}
            assert len(dom.with_attr("data-node")) == len(net.topo.graph.nodes)
        finally:
            cli.run("link up sg1 sr3")
        converged(net)


def test_view_shows_the_scscs_steering(net, cli):
    """pod1's own /B/1 (and /A/1) degraded: the SCSC steers sg1's calls to /B
    to /B/4 (and sg3's to pod4's instances too); the page lists the decisions,
    highlights each steered path's links from the requesting SG's pods to the
    chosen instance's pod, rings that pod, and takes the highlight away when
    the steering ends."""
    t = net.topo

    def steering():
        return [d for d in v.source.state()["scsc"]["decisions"] if d["chosen"]]

    def highlighted(dom):
        links = dom.with_attr("data-link")
        return ({frozenset(k.split("|")) for k, e in links.items()
                 if "steered" in e["class"].split()},
                {k for k, e in dom.with_attr("data-node").items() if "chosen" in e["class"].split()})
    with ViewServer(net) as v:
        cli.run("degrade pod1 200")
        try:
            poll(lambda: any(d["chosen"] == "/B/4" and d["sg"] == "sg1" for d in steering()), 15,
                 "the SCSC steering sg1's /B to /B/4")
            dom = Elements(dump_dom(v.url))
        finally:
            cli.run("degrade pod1 0")
        rows = [e["text"] for e in dom.items if e["tag"] == "tr"]
        assert any("sg1" in r and "/B/4" in r for r in rows), rows
        groups = [e for e in dom.items if e["tag"] == "g" and e.get("data-sg")]
        assert any((g["data-sg"], g["data-service"], g["data-chosen"]) == ("sg1", "/B", "/B/4")
                   for g in groups), groups
        want_links, want_pods = set(), set()
        for g in groups:                  # every steering on the page: its SG's pods to the instance
            path, pod = g["data-path"].split(), t.pod_of(g["data-chosen"])
            assert t.kind(path[0]) == "sg" and t.gateway(pod) == path[-1], (path, pod)
            want_links |= {frozenset(h) for h in zip(path, path[1:])}
            want_links |= {frozenset((p, path[0])) for p in t.pods() if t.gateway(p) == path[0]}
            want_links.add(frozenset((path[-1], pod)))
            want_pods.add(pod)
        assert {frozenset(("pod1", "sg1")), frozenset(("sg4", "pod4"))} <= want_links
        assert highlighted(dom) == (want_links, want_pods)

        poll(lambda: not steering(), 20, "the steering to end after the hysteresis")
        dom = Elements(dump_dom(v.url))
        assert highlighted(dom) == (set(), set())
        assert not [e for e in dom.items if e["tag"] == "g" and e.get("data-sg")]


# -- dmsc stats: every loss ----------------------------------------------------------------------
SEND = r"""
import json, sys, time
from traffic.wire import codec, defs
from traffic.wire.link import RawLink
iface, mac, n, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
good = codec.encode(defs.TYPE_REQUEST, "/C/2", "/C/2", eth_src=mac)
bad_version = bytearray(good); bad_version[14] = 7
truncated = good[:14 + 20]
frames = [bytes(bad_version), truncated] if gap else [bytes(bad_version)]
with RawLink(iface) as link:
    for i in range(n):
        link.send(frames[i % len(frames)])
        if gap:
            time.sleep(gap)          # pacing of the burst, not a wait for a condition
print(json.dumps({"sent": n}))
"""


def _pod_counters(net, pod):
    intf = net.topo.intf_name(pod, 0)
    out = net.host(pod).cmd(f"cat /sys/class/net/{intf}/statistics/tx_packets "
                            f"/sys/class/net/{intf}/statistics/tx_dropped").split()
    return {"tx_packets": int(out[0]), "tx_dropped": int(out[1])}


def _send(net, pod, n, gap):
    t = net.topo
    res = net.run_in(pod, ["-c", SEND, t.intf_name(pod, 0), t.mac(pod, 0), str(n), str(gap)],
                     timeout=120)
    assert json.loads(res.stdout)["sent"] == n, res.stderr


def _settled(net, sw, port, before, timeout=30.0):
    """Stats once BMv2 has taken in what it will: every frame the interface
    received since ``before`` counted by the program, or (frames were lost
    before it: how many is what is measured) port_in unchanged for 0.5 s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        st = stats.net_stats(net, [sw])[sw]
        p = st.since(before).port(port)
        if p.p4_in == p.kernel["rx_packets"]:
            return st
        if last is not None and st.port(port).p4_in == last.port(port).p4_in:
            return st
        assert time.monotonic() < deadline, f"{sw} port {port} still taking frames in"
        last = st
        time.sleep(0.5)                 # the stability window, for a burst with losses


@pytest.fixture
def quiet_pod2(net):
    """pod2's namespace with no pod process in it (so no announcement
    refreshes): every frame on sg2's port 1 is then one the test sent."""
    net.stop_pod("pod2")
    try:
        yield "pod2"
    finally:
        net.start_pod("pod2")
        net.wait_announced(["pod2"], timeout=20)


@pytest.mark.parametrize("n, gap", [(200, 0.005), (20000, 0.0)], ids=["paced", "unpaced"])
def test_stats_account_for_every_frame_a_pod_sends(net, quiet_pod2, n, gap):
    """Malformed frames from pod2 to sg2: the kernel counts every one on
    sg2's interface; the P4 program counts on port 1 exactly what it drops,
    by reason; the difference is reported as lost before P4."""
    sw, port = "sg2", net.topo.port("sg2", "pod2")
    before, pod0 = stats.net_stats(net, [sw])[sw], _pod_counters(net, "pod2")
    _send(net, "pod2", n, gap)
    win = _settled(net, sw, port, before).since(before)
    pod1 = _pod_counters(net, "pod2")
    p = win.port(port)
    # every frame sent is in the kernel's counts: delivered to sg2's
    # interface, or dropped by the kernel on the way (counted at either end)
    kernel_dropped = p.kernel["rx_dropped"] + pod1["tx_dropped"] - pod0["tx_dropped"]
    assert p.kernel["rx_packets"] + kernel_dropped == n
    # the P4 program counted on the port exactly what it dropped, by reason;
    # the interface's surplus is what never reached it
    assert p.p4_in == win.drops["bad_version"] + win.drops["truncated"]
    assert p.p4_in <= p.kernel["rx_packets"]
    assert sum(win.punts.values()) == win.punts["control"]      # no announcement: pod2 is quiet
    if gap:       # paced below BMv2's rate: each reason counted apart (a stalled machine
        #           may still lose a frame or two before P4: they show as such)
        lost = p.lost_before_p4
        assert lost <= n // 20, f"{lost} of {n} paced frames lost before P4"
        for reason in ("bad_version", "truncated"):
            assert n // 2 - lost <= win.drops[reason] <= n // 2, (reason, win.drops, lost)
    else:         # unpaced: BMv2 takes a fraction, and the rest shows as lost before P4
        assert p.lost_before_p4 > 0, "BMv2 kept up with an unpaced burst: no loss to show"
        print(f"unpaced burst of {n}: interface rx {p.kernel['rx_packets']}, kernel drops "
              f"{kernel_dropped}, P4 port_in {p.p4_in}, lost before P4 {p.lost_before_p4}")


def test_dmsc_stats_prints_and_exports_the_counts_of_known_frames(net, quiet_pod2):
    """20 malformed frames from the quiet pod2, paced: `dmsc stats --json` has
    each in sg2's port 1 counts (the kernel's and the P4 program's), dropped by
    reason, none lost before P4; the table prints the same numbers."""
    sw, port, n = "sg2", net.topo.port("sg2", "pod2"), 20

    def dmsc_stats(*args):
        res = subprocess.run([sys.executable, "-m", "dmsc.cli", "stats", sw, "--run-dir",
                              str(net.run_dir), *args], capture_output=True, text=True,
                             cwd=ROOT, timeout=60, env={**os.environ, "COLUMNS": "200"})
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout
    before = json.loads(dmsc_stats("--json"))
    p4_in0 = next(p["p4_in"] for p in before["ports"] if p["port"] == port)
    _send(net, "pod2", n, 0.01)                     # bad_version and truncated, in turn
    poll(lambda: stats.net_stats(net, [sw])[sw].port(port).p4_in - p4_in0 >= n, 10,
         f"sg2's program counting the {n} frames on port {port}")
    after = json.loads(dmsc_stats("--json"))
    text = dmsc_stats()
    assert [p["port"] for p in after["ports"]] == [1, 2, 3]
    b, a = (next(p for p in d["ports"] if p["port"] == port) for d in (before, after))
    assert a["rx_packets"] - b["rx_packets"] == n
    assert a["p4_in"] - b["p4_in"] == n
    assert a["lost_before_p4"] - b["lost_before_p4"] == 0
    assert {r: after["drops"][r] - before["drops"][r] for r in ("bad_version", "truncated")} \
        == {"bad_version": n // 2, "truncated": n // 2}
    assert after["totals"]["p4_dropped"] - before["totals"]["p4_dropped"] == n
    assert set(after["drops"]) >= {"bad_version", "truncated", "hop_limit"}
    assert "lost before P4" in text
    row = next(ln for ln in text.splitlines() if "sg2-eth1" in ln)
    cells = [c.strip() for c in row.split("│")][1:-1]
    # port, interface, to, rx, rx dropped, P4 port_in, lost before P4, tx, tx dropped
    assert cells[:7] == [str(port), "sg2-eth1", "pod2", str(a["rx_packets"]),
                         str(a["rx_dropped"]), str(a["p4_in"]), str(a["lost_before_p4"])], row


# -- a second network on the same names -------------------------------------------------------------
@pytest.mark.parametrize("cmd", ["up", "demo"])
def test_a_second_network_names_the_one_running_in_one_line(net, tmp_path, cmd):
    res = subprocess.run([sys.executable, "-m", "dmsc.cli", cmd, "--run-dir",
                          str(tmp_path / "second")], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert res.returncode == 1
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    err = [ln for ln in lines if ln.startswith(f"dmsc {cmd}: ")]
    assert len(err) == 1, res.stdout
    line = err[0]
    assert "already exist" in line and "network 'fig2'" in line and "is running" in line
    assert f"pid {os.getpid()}" in line and f"`sudo kill {os.getpid()}`" in line
    assert str(net.run_dir) in line
    assert "Traceback" not in res.stdout + res.stderr and "RTNETLINK" not in res.stdout
