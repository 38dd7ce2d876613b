"""The live view on a stand-in network: layout, rates from counters, link
states, the HTTP server, and the page rendered by headless Chromium."""
import json
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from dmsc import live_view as view
from tests.conftest import ROOT
from tests.support.browser import Elements, dump_dom
from topologies.topo import Topology

FIG2 = ROOT / "topologies" / "fig2.yaml"


class Proc:
    def __init__(self, up=True):
        self.up = up

    def alive(self):
        return self.up


class FakeNet:
    """What ViewSource reads of a DmscNet."""

    def __init__(self):
        self.topo = Topology.load(FIG2)
        self.failures = SimpleNamespace(cut=set())
        self.sw = {s: Proc() for s in self.topo.switches()}
        self.agents = {s: Proc() for s in self.topo.switches()}
        self.pods = {p: Proc() for p in self.topo.pods()}
        self.scsc = None
        self.scsc_addr = None

    def switch(self, name):
        return self.sw[name]


class Counters:
    """A fake /sys/class/net: counters the test sets, a clock the test moves."""

    def __init__(self, intfs):
        self.c = {i: {"tx_packets": 0, "tx_bytes": 0, "rx_packets": 0, "rx_bytes": 0}
                  for i in intfs}
        self.now = 100.0

    def read(self, intf):
        return dict(self.c[intf]) if intf in self.c else None

    def clock(self):
        return self.now


@pytest.fixture
def rig():
    net = FakeNet()
    t = net.topo
    intfs = {t.intf_name(s, t.port(s, nb)) for s in t.switches() for nb in t.graph.neighbors(s)}
    ctr = Counters(intfs)
    return net, ctr, view.ViewSource(net, clock=ctr.clock, intf_reader=ctr.read)


def link(state, a, b):
    return next(x for x in state["links"] if {x["a"], x["b"]} == {a, b})


def test_every_node_is_placed_inside_the_drawing_and_apart(rig):
    net, _ctr, src = rig
    st = src.state()
    assert {n["id"] for n in st["nodes"]} == set(net.topo.graph.nodes)
    pts = [(n["x"], n["y"]) for n in st["nodes"]]
    assert all(0.05 <= x <= 0.95 and 0.05 <= y <= 0.95 for x, y in pts)
    assert len(set(pts)) == len(pts)
    assert view.layout(net.topo) == view.layout(Topology.load(FIG2))     # same picture each time


def test_rates_come_from_counter_deltas_in_both_directions(rig):
    net, ctr, src = rig
    t = net.topo
    intf = t.intf_name("sg1", t.port("sg1", "sr3"))          # sg1 < sr3: sg1's end is read
    src.state()                                               # first sample: no rate yet
    ctr.c[intf].update(tx_packets=300, tx_bytes=300 * 125, rx_packets=30, rx_bytes=30 * 100)
    ctr.now += 2.0
    lk = link(src.state(), "sg1", "sr3")
    assert lk["rate"]["sg1>sr3"] == {"fps": 150.0, "kbps": 150.0}     # 300 frames * 1000 bit / 2 s
    assert lk["rate"]["sr3>sg1"] == {"fps": 15.0, "kbps": 12.0}
    assert lk["fps"] == 165.0 and lk["state"] == "up"
    assert link(src.state(), "sg2", "sr2")["fps"] == 0                # an idle link


def test_a_pod_link_is_read_on_the_switch_side(rig):
    net, ctr, src = rig
    t = net.topo
    intf = t.intf_name("sg1", t.port("sg1", "pod1"))
    src.state()
    ctr.c[intf].update(rx_packets=50)                         # the switch received: pod1 sent
    ctr.now += 1.0
    lk = link(src.state(), "pod1", "sg1")
    assert lk["intf"] == intf and lk["rate"]["pod1>sg1"]["fps"] == 50.0


def test_a_cut_link_and_a_dead_switch_are_marked(rig):
    net, _ctr, src = rig
    net.failures.cut.add(frozenset(("sg1", "sr3")))
    net.sw["sr2"].up = False
    st = src.state()
    assert link(st, "sg1", "sr3")["state"] == "cut"
    assert {link(st, "sr2", nb)["state"] for nb in net.topo.graph.neighbors("sr2")} == {"dead"}
    assert next(n for n in st["nodes"] if n["id"] == "sr2")["alive"] is False
    assert link(st, "sg1", "sr1")["state"] == "up"


def test_no_scsc_and_an_unreachable_scsc_are_told_apart(rig):
    net, _ctr, src = rig
    assert src.state()["scsc"] == {"state": "none", "decisions": []}
    from topologies.emu.child_processes import free_port
    net.scsc, net.scsc_addr = Proc(), f"127.0.0.1:{free_port()}"      # nothing listens there
    sc = src.state()["scsc"]
    assert sc["state"] == "unreachable" and sc["decisions"] == []


def test_the_server_serves_the_page_and_the_state_on_localhost_only(rig):
    _net, _ctr, src = rig
    with view.ViewServer(None, source=src) as v:
        assert v.httpd.server_address[0] == "127.0.0.1"
        page = urllib.request.urlopen(v.url, timeout=5).read().decode()
        assert "<svg" in page and "/state.json" in page
        script = page.split("<script>")[1].replace("http://www.w3.org/2000/svg", "")
        assert "http" not in script and "src=" not in page       # nothing from elsewhere
        st = json.loads(urllib.request.urlopen(v.url + "state.json", timeout=5).read())
        assert st["topology"] == "fig2" and len(st["links"]) == 15
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(v.url + "etc/passwd", timeout=5)
        assert e.value.code == 404


def test_a_failing_state_read_is_reported_and_the_server_goes_on(rig):
    _net, _ctr, src = rig

    def broken():
        raise OSError("counters gone")
    with view.ViewServer(None, source=SimpleNamespace(state=broken)) as v:
        st = json.loads(urllib.request.urlopen(v.url + "state.json", timeout=5).read())
        assert st == {"error": "OSError: counters gone"}
        assert "<svg" in urllib.request.urlopen(v.url, timeout=5).read().decode()


def test_a_taken_port_is_one_clear_error(rig):
    _net, _ctr, src = rig
    with view.ViewServer(None, source=src) as v:
        with pytest.raises(RuntimeError, match="cannot listen on 127.0.0.1"):
            view.ViewServer(None, port=v.httpd.server_address[1], source=src)


def test_chromium_draws_every_switch_and_pod_and_marks_the_cut_link(rig):
    net, ctr, src = rig
    t = net.topo
    net.failures.cut.add(frozenset(("sg1", "sr3")))
    net.sw["sr2"].up = False
    net.agents["sg3"].up = False
    src.state()
    ctr.c[t.intf_name("sg4", t.port("sg4", "sr3"))]["tx_packets"] = 500
    ctr.now += 1.0
    with view.ViewServer(None, source=src) as v:
        dom = Elements(dump_dom(v.url))
    nodes = dom.with_attr("data-node")
    assert set(nodes) == set(t.graph.nodes)
    for s in t.switches():
        assert "switch" in nodes[s]["class"] and s in nodes[s]["text"]
    assert "dead" in nodes["sr2"]["class"] and "dead" not in nodes["sr1"]["class"]
    assert "agent down" in nodes["sg3"]["text"] and "agent down" not in nodes["sg1"]["text"]
    assert "distributed mode" in next(e for e in dom.items if e.get("id") == "mode")["text"]
    links = dom.with_attr("data-link")
    assert len(links) == 15
    cut = links.get("sg1|sr3") or links["sr3|sg1"]
    assert "cut" in cut["class"].split() and "\u2715" in cut["text"]
    assert {e["data-state"] for k, e in links.items() if "sr2" in k.split("|")} == {"dead"}
    busy = links.get("sg4|sr3") or links["sr3|sg4"]
    assert busy["data-state"] == "up" and "sg4\u2192sr3 500/s" in busy["text"]
    assert int(dom.with_attr("data-polls")[next(iter(dom.with_attr("data-polls")))]
               ["data-polls"]) >= 2                             # it polls, not loads once
