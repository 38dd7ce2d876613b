"""The live view on a stand-in network: layout, rates from counters, link
states, the SCSC's steering (a real SCSC servicer's View over gRPC), the HTTP
server, and the page rendered by headless Chromium at 1400x900: labels that
do not overlap, rates as link width and colour, steered paths highlighted."""
import itertools
import json
import urllib.error
import urllib.request
from concurrent import futures
from types import SimpleNamespace

import grpc
import pytest

from controller.proto import scsc_pb2_grpc as scsc_grpc
from controller.scsc.schedule import Decision
from controller.scsc.scsc_service import Scsc
from dmsc import live_view as view
from tests.conftest import ROOT
from tests.support.browser import Elements, dump_dom
from topologies import generate
from topologies.emu.child_processes import free_port
from topologies.topo import Topology

FIG2 = ROOT / "topologies" / "fig2.yaml"


class Proc:
    def __init__(self, up=True):
        self.up = up

    def alive(self):
        return self.up


class FakeNet:
    """What ViewSource reads of a DmscNet."""

    def __init__(self, topo=None):
        self.topo = topo or Topology.load(FIG2)
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


def make_rig(topo=None):
    net = FakeNet(topo)
    t = net.topo
    intfs = {t.intf_name(s, t.port(s, nb)) for s in t.switches() for nb in t.graph.neighbors(s)}
    ctr = Counters(intfs)
    return net, ctr, view.ViewSource(net, clock=ctr.clock, intf_reader=ctr.read)


@pytest.fixture
def rig():
    return make_rig()


@pytest.fixture
def scsc(rig):
    """The SCSC's own servicer on 127.0.0.1, its decisions set by the test
    (``scsc.steer(...)``), the rig's network pointed at it: the view reads
    them through the real View RPC."""
    net = rig[0]
    svc = Scsc(b"k" * 32, {})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    scsc_grpc.add_ScscServicer_to_server(svc, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    net.scsc, net.scsc_addr = Proc(), f"127.0.0.1:{port}"

    def steer(sg, service, defaults, chosen="", path=(), why=""):
        svc.scheduler.decisions[(sg, service)] = Decision(sg, service, list(defaults),
                                                          chosen=chosen, path=list(path), why=why)
    svc.steer = steer
    try:
        yield svc
    finally:
        server.stop(grace=None)


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
    assert busy["data-state"] == "up" and "sg4\u2192sr3: 500 frames/s" in busy["text"]
    assert int(dom.with_attr("data-polls")[next(iter(dom.with_attr("data-polls")))]
               ["data-polls"]) >= 2                             # it polls, not loads once


# -- what a decision highlights ---------------------------------------------------------------
def test_a_steering_highlights_requester_path_and_chosen_pod():
    t = Topology.load(FIG2)
    d = {"sg": "sg1", "service": "/B", "chosen": "/B/4", "path": ["sg1", "sr3", "sg4"]}
    assert view.steered_links(t, d) == ([["pod1", "sg1"], ["sg1", "sr3"], ["sr3", "sg4"],
                                         ["sg4", "pod4"]], "pod4")
    assert view.steered_links(t, dict(d, chosen="", path=[])) == ([], None)     # SPF again
    # an instance the topology does not list: the path, no pod
    assert view.steered_links(t, dict(d, chosen="/B/9")) == \
        ([["pod1", "sg1"], ["sg1", "sr3"], ["sr3", "sg4"]], None)


# -- the page in Chromium at 1400x900 ---------------------------------------------------------
def box(e) -> tuple[float, float, float, float]:
    x, y, w, h = map(float, e["data-box"].split())
    return x, y, x + w, y + h


def overlap(a, b, slack=0.5) -> bool:
    """Two boxes (x0, y0, x1, y1) share more than a rounding error."""
    return a[0] + slack < b[2] and b[0] + slack < a[2] and a[1] + slack < b[3] and b[1] + slack < a[3]


def crosses(p, q, b) -> bool:
    """The segment p-q passes through box b (Liang-Barsky clipping)."""
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for d, lo, hi, o in ((dx, b[0], b[2], p[0]), (dy, b[1], b[3], p[1])):
        if d == 0:
            if not lo < o < hi:
                return False
            continue
        a, c = (lo - o) / d, (hi - o) / d
        t0, t1 = max(t0, min(a, c)), min(t1, max(a, c))
    return t0 < t1


def drawn(dom):
    """{node: {"shape": box, "labels": [box, ...]}} as Chromium rendered them."""
    out: dict[str, dict] = {}
    for e in dom.items:
        if "data-of" in e:
            n = out.setdefault(e["data-of"], {"labels": []})
            if "shape" in e["class"].split():
                n["shape"] = box(e)
            else:
                n["labels"].append(box(e))
    return out


@pytest.mark.parametrize("spec", ["fig2", "fat-tree:4", "grid:4x4"])
def test_no_label_overlaps_another_or_sits_on_a_foreign_link(spec):
    """Every node's name (and its pod instances or switch trouble) lies in its
    shape; no two shapes overlap, so no two labels do; no link runs through a
    node it does not end at; everything is inside the drawing."""
    topo = Topology.load(FIG2) if spec == "fig2" else generate.from_spec(spec)
    net, _ctr, src = make_rig(topo)
    net.sw[topo.switches()[1]].up = False                   # a "down" label
    net.agents[topo.switches()[2]].up = False               # an "agent down" label
    with view.ViewServer(None, source=src) as v:
        dom = Elements(dump_dom(v.url + "?boxes"))
    nodes = drawn(dom)
    assert set(nodes) == set(topo.graph.nodes)
    assert sum(len(n["labels"]) for n in nodes.values()) == len(topo.graph) + len(topo.pods()) + 2
    frame = box(next(e for e in dom.items if e.get("id") == "map"))
    for name, n in nodes.items():
        assert not overlap(n["shape"], (frame[0], frame[1], frame[0], frame[3])) and \
            frame[0] <= n["shape"][0] and n["shape"][2] <= frame[2] and \
            frame[1] <= n["shape"][1] and n["shape"][3] <= frame[3], (name, n["shape"], frame)
        for lb in n["labels"]:
            s = n["shape"]
            assert s[0] <= lb[0] and lb[2] <= s[2] and s[1] <= lb[1] and lb[3] <= s[3], (name, lb, s)
    clashes = [(a, b) for a, b in itertools.combinations(sorted(nodes), 2)
               if overlap(nodes[a]["shape"], nodes[b]["shape"])
               or any(overlap(x, y) for x in nodes[a]["labels"] for y in nodes[b]["labels"])]
    assert not clashes, clashes
    centre = {n: ((b["shape"][0] + b["shape"][2]) / 2, (b["shape"][1] + b["shape"][3]) / 2)
              for n, b in nodes.items()}
    through = [(u, v, n) for u, v in topo.graph.edges() for n in nodes if n not in (u, v)
               and crosses(centre[u], centre[v], nodes[n]["shape"])]
    assert not through, through


def luminance(colour: str) -> float:
    r, g, b = (int(x) / 255 for x in colour.removeprefix("rgb(").rstrip(")").split(","))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_link_width_and_colour_follow_the_rate_and_the_numbers_are_on_hover(rig):
    """YlOrRd on a log scale: ten times the frames/s is wider and darker; the
    exact rates each way are in the link's tooltip and in the links table; no
    text is drawn on the links."""
    net, ctr, src = rig
    t = net.topo
    src.state()
    ctr.c[t.intf_name("sg4", t.port("sg4", "sr3"))].update(tx_packets=500, tx_bytes=500 * 125)
    ctr.c[t.intf_name("sg1", t.port("sg1", "sr1"))].update(rx_packets=50, rx_bytes=50 * 125)
    ctr.now += 1.0
    with view.ViewServer(None, source=src) as v:
        dom = Elements(dump_dom(v.url))
    links = dom.with_attr("data-link")

    def find(a, b):
        return links.get(f"{a}|{b}") or links[f"{b}|{a}"]

    def wire(g):
        (w,) = dom.inside(g, "line", "wire")
        return float(w["stroke-width"]), w["stroke"]
    (w500, c500), (w50, c50), (w0, c0) = (wire(find("sg4", "sr3")), wire(find("sg1", "sr1")),
                                          wire(find("sg2", "sr2")))
    assert w500 > w50 > w0, (w500, w50, w0)
    assert luminance(c500) < luminance(c50) and c0 not in (c50, c500), (c500, c50, c0)
    title = find("sg4", "sr3")["text"]
    assert "sg4\u2192sr3: 500 frames/s, 500 kbit/s" in title and "sr3\u2192sg4: 0.0 frames/s" in title
    assert "sr1\u2192sg1: 50.0 frames/s" in find("sg1", "sr1")["text"]
    rows = [e["text"] for e in dom.items if e["tag"] == "tr" and e["parent"]["tag"] == "tbody"]
    assert any(r.startswith("sg4 \u2013 sr3") and "500" in r for r in rows), rows
    assert not [e for g in links.values() for e in dom.inside(g, "text")]    # no labels on links


class Replay:
    """A recorded sequence of states: the first call gets the first, every
    later call the last (the view's server serves whatever state() returns)."""

    def __init__(self, *states):
        self.states = list(states)

    def state(self):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def steered_on_page(dom):
    links = dom.with_attr("data-link")
    return ({frozenset(k.split("|")) for k, e in links.items() if "steered" in e["class"].split()},
            {k for k, e in dom.with_attr("data-node").items() if "chosen" in e["class"].split()},
            dom.inside(next(e for e in dom.items if e.get("id") == "halos"), "line"))


def test_the_steered_path_is_highlighted_and_unhighlighted_when_the_steering_ends(rig, scsc):
    _net, _ctr, src = rig
    scsc.steer("sg1", "/B", ["/B/1"], "/B/4", ["sg1", "sr3", "sg4"], "/B/1: delay; steered to /B/4")
    scsc.steer("sg3", "/A", ["/A/1", "/A/4"])                       # watched, not steered
    with view.ViewServer(None, source=src) as v:
        dom = Elements(dump_dom(v.url))
    links, chosen, halos = steered_on_page(dom)
    assert links == {frozenset(x) for x in (("pod1", "sg1"), ("sg1", "sr3"), ("sr3", "sg4"),
                                            ("sg4", "pod4"))}
    assert chosen == {"pod4"} and len(halos) == 4
    (g,) = [e for e in dom.items if e["tag"] == "g" and "steer" in e.get("class", "").split()]
    assert (g["data-sg"], g["data-service"], g["data-chosen"]) == ("sg1", "/B", "/B/4")
    decisions = next(e for e in dom.items if e.get("id") == "decisions")
    rows = {e["text"][:3]: e.get("class", "") for e in dom.inside(decisions, "tr")
            if e["parent"]["tag"] == "tbody"}
    assert rows == {"sg1": "steered", "sg3": ""}                   # the table row too

    steering = src.state()
    scsc.steer("sg1", "/B", ["/B/1"], why="defaults healthy: back to SPF")      # it ends
    ended = src.state()
    with view.ViewServer(None, source=Replay(steering, ended)) as v:
        dom = Elements(dump_dom(v.url))
    polls = next(e for e in dom.items if e["tag"] == "body")["data-polls"]
    assert int(polls) >= 2                                # drawn steered, then updated in place
    assert steered_on_page(dom) == (set(), set(), [])
    assert not [e for e in dom.items if e["tag"] == "g" and "steer" in e.get("class", "").split()]


# -- the host's fidelity verdict ------------------------------------------------------------------
class RecordedHost:
    """A host monitor that replays a recorded series (tests/unit/data/fidelity)."""

    def __init__(self, name):
        from dmsc import fidelity
        from dmsc.run_files import read_csv
        self.fidelity = fidelity
        self.rows = fidelity.read_host_csv(read_csv(ROOT / "tests" / "unit" / "data"
                                                    / "fidelity" / name))
        self.sampled = 0

    def sample(self):
        self.sampled += 1

    def verdict(self):
        return self.fidelity.verdict(host=self.rows)


def test_the_state_and_the_page_carry_the_hosts_verdict(rig):
    net, ctr, _src = rig
    quiet = view.ViewSource(net, clock=ctr.clock, intf_reader=ctr.read,
                            host=RecordedHost("host-quiet.csv"))
    assert quiet.state()["fidelity"]["level"] == "ok"
    host = RecordedHost("host-saturated.csv")
    src = view.ViewSource(net, clock=ctr.clock, intf_reader=ctr.read, host=host)
    st = src.state()
    assert st["fidelity"]["level"] == "invalid" and st["fidelity"]["monitors"] == ["host_cpu"]
    assert host.sampled == 1                             # sampled with the rates, not per poll
    with view.ViewServer(None, source=src) as v:
        dom = Elements(dump_dom(v.url))
    fid = next(e for e in dom.items if e.get("id") == "fidelity")
    assert "invalid" in fid["class"].split()
    assert fid["text"].startswith("fidelity=invalid: host_cpu")
