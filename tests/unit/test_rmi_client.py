"""The bounded load loop: counts, failures by status, outages, percentiles."""
from __future__ import annotations

import pytest

from traffic.rmi_client import CallTimeout, RemoteError, Reply, load
from traffic.wire import codec


class ScriptedClient:
    """Answers from a script ('ok', 'timeout', 'no_route'), each call taking
    10 ms of a fake clock and ``rtt`` ms of latency."""

    def __init__(self, script, clock):
        self.script, self.clock, self.calls = list(script), clock, 0

    def call(self, dst, method, args, timeout):
        self.calls += 1
        self.clock.now += 0.010
        what = self.script.pop(0) if self.script else "ok"
        if what == "timeout":
            raise CallTimeout("timed out")
        if what == "no_route":
            raise RemoteError(codec.STATUS_NO_ROUTE, "no route", "/dmsc-switch")
        return Reply({}, "/B/4", rtt_s=self.calls / 1000, hops=3)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_counts_failures_by_status_and_the_longest_outage():
    clock = Clock()
    c = ScriptedClient(["ok", "timeout", "timeout", "no_route", "ok", "ok"], clock)
    out = load(c, "/B/4", "echo", {}, count=6, interval=0.0, timeout=1,
               clock=clock, sleep=clock.sleep)
    assert (out["sent"], out["ok"], out["failed"]) == (6, 3, 3)
    assert out["errors"] == {"timeout": 2, "no_route": 1}
    assert out["longest_outage_ms"] == 30.0          # three failed calls of 10 ms
    assert out["p50_ms"] == 5.0 and out["p99_ms"] == 6.0   # rtts 1, 5, 6 ms


def test_a_loop_that_fails_to_the_end_reports_the_outage_to_the_end():
    clock = Clock()
    c = ScriptedClient(["ok"] + ["timeout"] * 9, clock)
    out = load(c, "/B/4", "echo", {}, count=10, interval=0.0, timeout=1,
               clock=clock, sleep=clock.sleep)
    assert out["failed"] == 9 and out["longest_outage_ms"] == 90.0
    assert out["p50_ms"] == 1.0


def test_bounded_in_time_as_well_as_count():
    clock = Clock()
    c = ScriptedClient([], clock)
    out = load(c, "/B/4", "echo", {}, count=1_000, interval=0.1, timeout=1, max_s=1.0,
               clock=clock, sleep=clock.sleep)
    assert c.calls == out["sent"] == 11              # t = 0, 0.1, ... 1.0
    assert out["ok"] == 11


def test_paced_at_the_interval():
    clock = Clock()
    c = ScriptedClient([], clock)
    load(c, "/B/4", "echo", {}, count=5, interval=0.05, timeout=1,
         clock=clock, sleep=clock.sleep)
    assert abs(clock.now - 100.0 - 5 * 0.05) < 1e-9   # 10 ms calls, slept up to 50 ms each


class FakeLink:
    """Records what the client sends and replays scripted frames."""

    def __init__(self, replies=()):
        self.sent, self.replies = [], list(replies)

    def send(self, frame):
        self.sent.append(frame)

    def recv(self, timeout):
        return self.replies.pop(0) if self.replies else None

    def close(self):
        pass


def make_client(replies=()):
    from traffic.rmi_client import Client
    c = Client.__new__(Client)
    c.name, c.mac, c.gateway_mac, c.timeout = "/A/1", "02:00:01:00:00:01", codec.BROADCAST, 0.2
    c.link, c._next_id, c._early = FakeLink(replies), 5, {}
    return c


def test_a_request_too_large_for_one_frame_is_refused_before_sending():
    from traffic.rmi_client import PayloadTooLarge
    c = make_client()
    with pytest.raises(PayloadTooLarge, match="does not fit in one 1514-byte frame"):
        c.call("/B/4", "echo", {"x": "y" * 1500})
    assert c.link.sent == []


def test_the_request_is_the_wire_format_and_the_reply_is_matched_by_id():
    from traffic.wire import defs, layers
    c = make_client()
    req = layers.parse(bytes(layers.request("/B/4", "/A/1", "echo", {"k": 1}, msg_id=5)))
    other = bytes(layers.response(layers.parse(bytes(layers.request("/B/4", "/A/1", "echo", {}, msg_id=4))),
                                  "/B/4", {"late": True}))
    mine = bytes(layers.response(req, "/B/4", {"k": 1}))
    c.link.replies = [other, mine]
    r = c.call("/B/4", "echo", {"k": 1})
    sent = layers.parse(c.link.sent[0])
    assert sent.type == defs.TYPE_REQUEST and sent.msg_id == 5 and sent.dst_name == "/B/4"
    assert r.result == {"k": 1} and r.responder == "/B/4"
    assert 4 in c._early                                   # the other reply is kept, not lost


def test_an_error_frame_raises_its_status_and_sender():
    from traffic.rmi_client import RemoteError
    from traffic.wire import layers, names
    c = make_client()
    req = layers.parse(bytes(layers.request("/B/4", "/A/1", "echo", {}, msg_id=5)))
    c.link.replies = [bytes(layers.error(req, names.switch_name("sg1"), codec.STATUS_NO_ROUTE, "no route"))]
    with pytest.raises(RemoteError) as exc:
        c.call("/B/4", "echo", {})
    assert exc.value.status_name == "no_route" and exc.value.responder == names.switch_name("sg1")


def test_every_call_is_recorded_with_its_send_time_latency_responder_and_status():
    clock = Clock()
    c = ScriptedClient(["ok", "timeout", "no_route", "ok"], clock)
    recs = []
    out = load(c, "/B/4", "echo", {}, count=4, interval=0.1, timeout=1,
               clock=clock, sleep=clock.sleep, record=recs.append)
    assert [r["status"] for r in recs] == ["ok", "timeout", "no_route", "ok"]
    assert [round(r["t"] - 100.0, 3) for r in recs] == [0.0, 0.1, 0.2, 0.3]   # paced sends
    assert [r["latency_ms"] for r in recs] == [1.0, None, None, 4.0]
    assert [r["responder"] for r in recs] == ["/B/4", None, "/dmsc-switch", "/B/4"]
    assert out["ok"] == sum(r["status"] == "ok" for r in recs)


def test_a_probe_returns_the_forward_path_first_hop_first():
    from traffic.wire import defs, layers
    c = make_client()
    recs = [layers.ProbeRecord(switch_id=s, ingress_port=1, egress_port=2,
                               ingress_ts=1000 * s, egress_ts=1000 * s + 7 * s)
            for s in (1, 11, 4)]            # on the wire newest (last hop) first
    req = layers.parse(bytes(layers.probe("/B/4", "/A/1", msg_id=5, records=recs[::-1])))
    c.link.replies = [bytes(layers.probe_reply(req, "/B/4"))]
    p = c.probe("/B/4")
    sent = layers.parse(c.link.sent[0])
    assert sent.type == defs.TYPE_PROBE and sent.dst_name == "/B/4" and sent.msg_id == 5
    assert p.responder == "/B/4"
    assert [(h["switch_id"], h["residence_us"]) for h in p.hops] == [(1, 7), (11, 77), (4, 28)]


def test_a_probe_with_no_answer_times_out():
    c = make_client()
    with pytest.raises(CallTimeout):
        c.probe("/B/4", timeout=0.05)
