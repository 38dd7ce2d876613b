"""Applications as call graphs (traffic/callgraph.py): the file's bad inputs
name the line and the field; pods' runtimes, wired together on a fake clock,
make the calls the file declares, in its order, and the spans they write put
the request's tree back together."""
from __future__ import annotations

import heapq
import textwrap

import pytest

from tests.conftest import ROOT
from traffic import callgraph
from traffic.callgraph import AppError, AppServer, check_tree, hops, loads, trees
from traffic.wire import codec, defs, names

SMALL = """\
name: small
timeout: 100ms
services:
  front:
    methods:
      get:
        service_ms: 1
        calls:
          - [mid.get, leaf.get]
          - {call: leaf.put, request_bytes: 200}
  mid:
    methods:
      get: {service_ms: 2, calls: [leaf.get]}
  leaf:
    methods:
      get: {service_ms: 5, reply_bytes: 300}
      put: {service_ms: 1}
"""


def refused(text, line, fld, msg):
    with pytest.raises(AppError) as exc:
        loads(textwrap.dedent(text), source="a.yaml")
    assert (exc.value.line, exc.value.field) == (line, fld), str(exc.value)
    assert msg in str(exc.value)
    assert str(exc.value).startswith(f"a.yaml, line {line}, {fld}: " if line else "a.yaml")


def test_the_shipped_social_network():
    app = callgraph.load(ROOT / "apps" / "social-network.yaml")
    assert len(app.services) == 12
    assert app.depth("frontend", "compose_post") == 4
    assert app.span_count("frontend", "compose_post") == 12
    assert app.services["post_storage"].name == "/post_storage"
    assert app.service_of("/post_storage/2").key == "post_storage"
    steps = app.services["compose"].methods["compose_post"].steps
    assert [[c.label for c in s] for s in steps] == [
        ["unique_id.get", "text.process", "media.upload", "user.get"],
        ["post_storage.store"], ["user_timeline.write", "home_timeline.write"]]


@pytest.mark.parametrize("text,line,fld,msg", [
    ("services:\n  a:\n    methods:\n      m: {colour: red}\n", 4,
     "services.a.methods.m.colour", "unknown field"),
    ("services:\n  a:\n    methods:\n      m: {calls: [b.m]}\n", 4,
     "services.a.methods.m.calls[0]", "no service 'b'; services: a"),
    ("services:\n  a:\n    methods:\n      m: {calls: [a.n]}\n", 4,
     "services.a.methods.m.calls[0]", "service a has no method 'n'"),
    ("services:\n  a:\n    methods:\n      m:\n        calls:\n          - just_a_name\n", 6,
     "services.a.methods.m.calls[0]", "a call is service.method"),
    ("services:\n  a:\n    methods:\n      m:\n        calls:\n          - []\n", 6,
     "services.a.methods.m.calls[0]", "an empty fan-out"),
    ("services:\n  a:\n    methods:\n      m: {reply_bytes: 5000}\n", 4,
     "services.a.methods.m.reply_bytes", "between 0 and 1200"),
    ("services:\n  a:\n    methods:\n      m: {service_ms: fast}\n", 4,
     "services.a.methods.m.service_ms", "must be a number"),
    ("timeout: soon\nservices:\n  a:\n    methods: {m: {}}\n", 1, "timeout",
     "a duration such as 500ms"),
    ("services:\n  a:\n    name: /b\n    methods: {m: {}}\n  b:\n    methods: {m: {}}\n",
     5, "services.b.name", "/b is already the name of service a"),
    ("services:\n  a:\n    name: /dmsc/x\n    methods: {m: {}}\n", 3, "services.a.name",
     "belong to the switches"),
    ("services:\n  a:\n    methods:\n      m: {calls: [b.m]}\n  b:\n    methods:\n"
     "      m: {calls: [[c.m, a.m]]}\n  c:\n    methods: {m: {}}\n", 7,
     "services.b.methods.m.calls[0][1]", "a cycle of calls: a.m -> b.m -> a.m"),
    ("services:\n  a:\n    methods: {}\n", 3, "services.a.methods", "no methods"),
    ("services: {}\n", 1, "services", "no services"),
    ("name: x\n", 1, "services", "is required"),
    ("services:\n  a:\n    methods: {m: {}}\n  a:\n    methods: {m: {}}\n", 4, "services.a",
     "given twice"),
])
def test_bad_application_files_name_the_line_and_the_field(text, line, fld, msg):
    refused(text, line, fld, msg)


class Mesh:
    """Pods' AppServers wired by name on a fake clock: every frame takes
    ``hop_s``; a REQUEST goes to an instance of the service its name names
    (round robin), an answer to the instance (or the client) it is addressed to."""

    def __init__(self, app, instances, hop_s=0.0002, drop=()):
        self.app, self.hop_s, self.drop = app, hop_s, set(drop)
        self.now, self.q, self.seq = 0.0, [], 0
        self.spans, self.client_answers = [], []
        self.servers = {i: AppServer(app, span_sink=self.spans.append) for i in instances}
        self.rr = {}

    def send(self, frame):
        self.seq += 1
        heapq.heappush(self.q, (self.now + self.hop_s, self.seq, frame))

    def deliver(self, frame):
        pkt = codec.decode(frame)
        if pkt.type == defs.TYPE_REQUEST:
            insts = [i for i in self.servers if names.prefix_matches(pkt.dst_name, i)]
            if not insts or pkt.dst_name in self.drop:
                return                                  # no route: the caller times out
            k = self.rr[pkt.dst_name] = self.rr.get(pkt.dst_name, -1) + 1
            inst = insts[k % len(insts)]
            err = self.servers[inst].on_request(pkt, inst, pkt.text(codec.TLV_METHOD), self.now)
            if err is not None:
                self.send(err)
        elif pkt.dst_name in self.servers:
            assert self.servers[pkt.dst_name].on_answer(pkt, self.now)
        else:
            self.client_answers.append((self.now, pkt))

    def run(self, until):
        while self.now <= until:
            for s in self.servers.values():
                for f in s.due(self.now):
                    self.send(f)
            wakes = [w for w in (s.next_wake() for s in self.servers.values()) if w is not None]
            wakes += [self.q[0][0]] if self.q else []
            if not wakes:
                return
            self.now = max(self.now, min(wakes))
            while self.q and self.q[0][0] <= self.now:
                self.deliver(heapq.heappop(self.q)[2])


def request(dst, method, trace, msg_id=7):
    return codec.encode(defs.TYPE_REQUEST, dst, "/client/1",
                        [(codec.TLV_METHOD, method.encode()),
                         (codec.TLV_BODY, f'{{"trace":"{trace}"}}'.encode())], msg_id=msg_id)


def test_the_trace_tree_is_the_files_call_graph():
    app = loads(SMALL)
    mesh = Mesh(app, ["/front/1", "/mid/1", "/leaf/1", "/leaf/2"])
    mesh.send(request("/front", "get", "t1"))
    mesh.run(until=1.0)
    assert len(mesh.client_answers) == 1
    t_end, answer = mesh.client_answers[0]
    assert answer.type == defs.TYPE_RESPONSE and answer.src_name == "/front/1"
    assert answer.msg_id == 7
    roots = trees(mesh.spans)
    assert list(roots) == ["t1"] and len(mesh.spans) == 5     # front, mid, leaf x2, leaf.put
    root = roots["t1"]
    assert check_tree(root, app) == []
    assert [(c["service"], c["method"]) for c in root["children"]] == [
        ("mid", "get"), ("leaf", "get"), ("leaf", "put")]
    # the fan-out left at once, after front's 1 ms; the next step after both answered
    calls = root["calls"]
    assert calls[0]["sent"] == calls[1]["sent"] == pytest.approx(0.0002 + 0.001)
    assert calls[2]["sent"] == max(calls[0]["answered"], calls[1]["answered"])
    # mid's 2 ms + its call to leaf (5 ms, 2 hops) make it the slower branch
    assert calls[0]["answered"] - calls[0]["sent"] == pytest.approx(0.002 + 0.005 + 4 * 0.0002)
    per = hops(root)
    assert [(h["depth"], h["caller"], h["callee"]) for h in per] == [
        (1, "front.get", "mid.get"), (2, "mid.get", "leaf.get"), (1, "front.get", "leaf.get"),
        (1, "front.get", "leaf.put")]
    assert all(h["network_ms"] == pytest.approx(0.4, abs=1e-6) for h in per)   # 2 hops each
    assert {h["instance"] for h in per if h["callee"] == "leaf.get"} == {"/leaf/1", "/leaf/2"}
    assert root["t_out"] == pytest.approx(t_end - 0.0002)


def test_a_tree_that_differs_from_the_file_is_reported():
    app = loads(SMALL)
    mesh = Mesh(app, ["/front/1", "/mid/1", "/leaf/1"])
    mesh.send(request("/front", "get", "t2"))
    mesh.run(until=1.0)
    spans = [s for s in mesh.spans if not (s["service"] == "leaf" and s["method"] == "put")]
    problems = check_tree(trees(spans)["t2"], app)
    assert problems == ["front.get: reached {('mid', 'get'): 1, ('leaf', 'get'): 1}, the file "
                        "says {('mid', 'get'): 1, ('leaf', 'get'): 1, ('leaf', 'put'): 1}"]
    other = loads(SMALL.replace("- [mid.get, leaf.get]", "- [mid.get]"))
    assert any("made" in p for p in check_tree(trees(mesh.spans)["t2"], other))


def test_a_downstream_time_out_fails_the_request_and_is_in_its_span():
    app = loads(SMALL)
    mesh = Mesh(app, ["/front/1", "/mid/1", "/leaf/1"], drop={"/mid"})
    mesh.send(request("/front", "get", "t3"))
    mesh.run(until=1.0)
    (_t, answer), = mesh.client_answers
    assert answer.type == defs.TYPE_ERROR
    assert b"downstream mid.get: timeout" in answer.tlv(codec.TLV_STATUS)
    root = trees(mesh.spans)["t3"]
    assert root["status"] == "error" and root["error"] == "mid.get: timeout"
    assert [c["status"] for c in root["calls"]] == ["timeout", "ok"]   # leaf.put never sent
    assert root["t_out"] == pytest.approx(0.0002 + 0.001 + 0.1)      # the 100 ms time-out


def test_an_unknown_method_is_an_error_at_once():
    app = loads(SMALL)
    s = AppServer(app)
    pkt = codec.decode(request("/front", "nope", "t4"))
    err = codec.decode(s.on_request(pkt, "/front/1", "nope", 0.0))
    assert err.type == defs.TYPE_ERROR and err.tlv(codec.TLV_STATUS)[:2] == b"\x00\x03"


def test_the_reports_call_graph_figures():
    from dmsc.experiment.report import call_graph_figures
    app = loads(SMALL)
    mesh = Mesh(app, ["/front/1", "/mid/1", "/leaf/1", "/leaf/2"])
    for i in range(4):
        mesh.send(request("/front", "get", f"t{i}", msg_id=10 + i))
    mesh.run(until=1.0)
    figs = call_graph_figures(mesh.spans, app)
    f = figs["front.get"]
    assert (f["requests"], f["ok"], f["match_pct"]) == (4, 4, 100.0)
    by = {(h["depth"], h["caller"], h["callee"]): h for h in f["hops"]}
    assert sorted(by) == [(1, "front.get", "leaf.get"), (1, "front.get", "leaf.put"),
                          (1, "front.get", "mid.get"), (2, "mid.get", "leaf.get")]
    leaf = by[(1, "front.get", "leaf.get")]
    assert leaf["calls"] == 4 and leaf["failed"] == 0
    assert sum(leaf["instances"].values()) == 4 and set(leaf["instances"]) <= {"/leaf/1", "/leaf/2"}
    assert by[(1, "front.get", "mid.get")]["p50_ms"] >= 7.0       # mid's 2 ms + leaf's 5 ms
    assert by[(2, "mid.get", "leaf.get")]["network_p99_ms"] == pytest.approx(0.4, rel=0.01)
    wrong = loads(SMALL.replace("          - {call: leaf.put, request_bytes: 200}\n", ""))
    assert call_graph_figures(mesh.spans, wrong)["front.get"]["match_pct"] == 0.0
