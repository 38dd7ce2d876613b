"""The open-loop load generator: on schedule whatever the answers do, latency
from the intended send time (coordinated omission corrected), every
scheduled call accounted for. A fake server on a fake clock: exact figures."""
from __future__ import annotations

import heapq
import json

import pytest

from traffic.loadgen import NOT_SENT, OpenLoop, decode_histogram, schedule
from traffic.rmi_client import RemoteError, Reply, load as closed_load
from traffic.wire import codec


class FakeServer:
    """A client and its server on one fake clock (``clock()``). Each call is
    answered ``service_s`` after it is sent; a call sent during ``stall``
    (from, to), seconds after the start, is answered at ``to`` (the server
    stopped answering); ``send_block`` (at, s): the first send at or after
    ``at`` takes ``s`` seconds (the generator itself stalls); ``errors``: the
    call numbers answered with a no_route ERROR."""

    def __init__(self, service_s=0.001, stall=None, send_block=None, errors=()):
        self.service_s, self.stall, self.send_block = service_s, stall, send_block
        self.errors = set(errors)
        self.now = self.t0 = 1000.0
        self.heap, self.n = [], 0

    def clock(self):
        return self.now

    def send_request(self, dst, method, args):
        if self.send_block and self.now - self.t0 >= self.send_block[0]:
            self.now += self.send_block[1]
            self.send_block = None
        self.n += 1
        due = self.now + self.service_s
        if self.stall and self.stall[0] <= self.now - self.t0 < self.stall[1]:
            due = max(due, self.t0 + self.stall[1])
        heapq.heappush(self.heap, (due, self.n))
        return self.n

    def next_answer(self, timeout):
        if self.heap and self.heap[0][0] <= self.now + timeout:
            due, n = heapq.heappop(self.heap)
            self.now = max(self.now, due)
            if n in self.errors:
                return n, RemoteError(codec.STATUS_NO_ROUTE, "no route", "/dmsc-sg1")
            return n, Reply({}, "/B/4", 0.0, 3)
        self.now += timeout
        return None

    # the closed loop's interface
    def call(self, dst, method, args, timeout):
        n = self.send_request(dst, method, args)
        while True:
            got = self.next_answer(timeout)
            if got is not None and got[0] == n:
                return Reply({}, "/B/4", self.service_s, 3)

    def sleep(self, s):
        self.now += s


def run(srv, **kw):
    recs = []
    out = OpenLoop(srv, "/B/4", "echo", {}, record=recs.append, clock=srv.clock, **kw).run()
    recs.sort(key=lambda r: r["t"])
    return out, recs


def test_constant_and_poisson_schedules():
    assert schedule(4, 1.0) == [0.0, 0.25, 0.5, 0.75]
    assert len(schedule(100, 2.5)) == 250
    p = schedule(200, 10.0, arrivals="poisson", seed=7)
    assert p == schedule(200, 10.0, arrivals="poisson", seed=7)       # reproducible
    assert p != schedule(200, 10.0, arrivals="poisson", seed=8)
    assert 1800 < len(p) < 2200 and p == sorted(p) and p[-1] < 10.0
    gaps = [b - a for a, b in zip(p, p[1:])]
    assert max(gaps) > 5 * min(gaps)                                   # not evenly spaced
    assert len(schedule(1000, 100.0, max_count=50)) == 50
    with pytest.raises(ValueError):
        schedule(10, 1.0, arrivals="bursty")


def test_sends_on_time_when_the_answers_are_late():
    srv = FakeServer(service_s=0.2)                 # every answer 200 ms after its call
    out, recs = run(srv, rate=100, duration=0.6, timeout=1.0)
    assert out["scheduled"] == out["sent"] == out["ok"] == 60
    # 200 ms of calls at 100/s (21 when a call and an answer fall on the same
    # instant: the send goes first); a closed loop has 1
    assert out["max_in_flight"] in (20, 21)
    assert all(r["t_sent"] == r["t"] and r["late_ms"] == 0 for r in recs)   # on schedule
    assert all(r["latency_ms"] == 200 for r in recs)
    assert out["p99_ms"] == pytest.approx(200, rel=1e-3)


def test_the_closed_loop_would_have_sent_a_fraction_of_them():
    srv = FakeServer(service_s=0.2)
    out = closed_load(srv, "/B/4", "echo", {}, count=60, interval=0.01, timeout=1.0,
                      max_s=0.65, clock=srv.clock, sleep=srv.sleep)
    assert out["sent"] == 4                         # one call in flight: 0, 0.2, 0.4, 0.6 s


def test_a_server_stall_shows_in_the_histogram_for_the_calls_scheduled_during_it():
    # the server answers nothing from 0.4 s to 0.7 s: a call due at t waits 0.7 - t
    srv = FakeServer(service_s=0.001, stall=(0.4, 0.7))
    out, recs = run(srv, rate=100, duration=1.0, timeout=1.0)
    assert out["ok"] == out["scheduled"] == 100
    h = decode_histogram(out["histogram"])
    assert h.get_total_count() == 100
    assert h.get_max_value() == pytest.approx(299_000, rel=2e-3)     # us: due at 0.401 s
    stalled = [r for r in recs if r["latency_ms"] > 1.5]
    assert len(stalled) == 30                       # the calls due in [0.4, 0.7)
    assert [round(r["latency_ms"]) for r in stalled] == list(range(299, 0, -10))
    assert out["p50_ms"] == pytest.approx(1.0, rel=2e-3) and out["p90_ms"] > 150


def test_the_generators_own_stall_is_counted_from_the_intended_time():
    # the send due at 0.3 s takes 150 ms: the calls due meanwhile leave late,
    # and their latency counts the wait though each call itself was fast
    srv = FakeServer(service_s=0.001, send_block=(0.3, 0.15))
    out, recs = run(srv, rate=100, duration=0.8, timeout=1.0)
    assert out["ok"] == 80
    late = [r for r in recs if r["late_ms"] > 1]
    assert len(late) == 15                           # due at 0.30 ... 0.44 s
    assert late[0]["latency_ms"] == pytest.approx(151, abs=0.01)
    assert max(r["service_ms"] for r in recs) == pytest.approx(1, abs=0.01)
    assert out["late"]["max_ms"] == pytest.approx(150, rel=2e-3)


def test_a_call_the_generator_could_not_send_in_time_is_not_answered():
    # the send due at 0.2 s takes 400 ms with a 200 ms time-out: the calls due
    # in (0.2, 0.4] s could not be answered in time and are not sent
    srv = FakeServer(service_s=0.001, send_block=(0.2, 0.4))
    out, recs = run(srv, rate=100, duration=1.0, timeout=0.2)
    assert len(recs) == out["scheduled"] == 100
    not_sent = [r for r in recs if r["status"] == NOT_SENT]
    assert out["not_sent"] == len(not_sent) == 20
    assert all(r["t_sent"] is None and r["late_ms"] is None and r["latency_ms"] is None
               for r in not_sent)
    # the blocked call itself left 400 ms late and timed out
    assert out["errors"] == {NOT_SENT: 20, "timeout": 1} and out["answered_pct"] == 79.0


def test_time_outs_errors_and_late_answers():
    srv = FakeServer(service_s=0.001, stall=(0.2, 0.5), errors={3})
    out, recs = run(srv, rate=50, duration=0.6, timeout=0.1)
    by = {}
    for r in recs:
        by[r["status"]] = by.get(r["status"], 0) + 1
    # held from 0.2 to 0.5 s: the 10 calls due before 0.4 s time out (100 ms),
    # the 5 due from 0.4 s are answered at 0.5 s, in time
    assert by == {"ok": 19, "timeout": 10, "no_route": 1} == {**out["errors"], "ok": 19}
    assert out["late_answers"] == 10
    assert out["longest_outage_ms"] == 200.0          # from the first time-out (0.2 s) to 0.4 s
    assert all(r["latency_ms"] is None for r in recs if r["status"] != "ok")
    assert recs[2]["responder"] == "/dmsc-sg1"


def test_bounded_by_the_deadline_and_stoppable():
    srv = FakeServer(service_s=0.001)
    out, recs = run(srv, rate=100, duration=10.0, timeout=0.1, deadline_s=0.5)
    assert srv.now - srv.t0 < 0.6
    assert len(recs) == out["scheduled"] == 1000     # every scheduled call accounted for
    assert out["ok"] == 50 and out["not_sent"] == 950
    srv = FakeServer(service_s=0.001)
    out = OpenLoop(srv, "/B/4", "echo", {}, rate=100, duration=10.0, timeout=0.1,
                   clock=srv.clock).run(lambda: srv.now - srv.t0 > 0.3)
    assert out["scheduled"] == 1000 and out["sent"] == 30 and out["not_sent"] == 970


def test_the_cli_refuses_more_than_the_cap(capsys):
    from traffic.loadgen import main
    assert main(["--iface", "lo", "--src", "/A/1", "--rate", "1000", "--duration", "2000",
                 "/B/4", "echo"]) == 2
    assert "capped" in json.loads(capsys.readouterr().out)["error"]


def test_each_call_can_carry_its_trace_id():
    srv = FakeServer(service_s=0.001)
    sent = []
    orig = srv.send_request
    srv.send_request = lambda dst, method, args: (sent.append(args), orig(dst, method, args))[1]
    out, recs = run(srv, rate=10, duration=0.3, timeout=0.1, trace_prefix="flow1-")
    assert sent == [{"trace": "flow1-0"}, {"trace": "flow1-1"}, {"trace": "flow1-2"}]
    assert [r["trace"] for r in recs] == ["flow1-0", "flow1-1", "flow1-2"]


# -- a run's records, afterwards: outages and shifts from intended send times ---------------------
def recs(*calls):
    """(t, status[, responder]) -> records as the generator writes them."""
    return [{"t": c[0], "status": c[1], "responder": c[2] if len(c) > 2 else None}
            for c in calls]


def test_an_outage_runs_from_the_first_unanswered_call_to_the_next_answered_one():
    from traffic.loadgen import longest_outage, outages
    r = recs((0.00, "ok"), (0.01, "timeout"), (0.02, "ok"),
             (0.03, "timeout"), (0.04, NOT_SENT), (0.05, "no_route"), (0.06, "ok"), (0.07, "ok"))
    got = outages(list(reversed(r)))                   # any order: sorted by intended time
    assert [(o.start, o.end, o.calls) for o in got] == [(0.01, 0.02, 1), (0.03, 0.06, 3)]
    worst = longest_outage(r)
    assert (worst.start, worst.end, worst.calls) == (0.03, 0.06, 3)
    assert abs(worst.seconds - 0.03) < 1e-9
    assert longest_outage(recs((0.0, "ok"), (0.1, "ok"))) is None


def test_calls_the_generator_never_sent_are_in_the_outage_not_hidden_by_it():
    """A stalled generator sends nothing: its not_sent calls still mark the
    time as an outage (a closed loop would have had no calls there at all)."""
    from traffic.loadgen import longest_outage
    r = recs((0.0, "ok"), *((0.1 * i, NOT_SENT) for i in range(1, 30)), (3.0, "ok"))
    assert abs(longest_outage(r).seconds - 2.9) < 1e-9


def test_an_outage_not_over_by_the_end_is_closed_by_the_last_call():
    from traffic.loadgen import longest_outage
    worst = longest_outage(recs((0.0, "ok"), (1.0, "timeout"), (1.5, "timeout")))
    assert worst.end is None and worst.last == 1.5 and worst.seconds == 0.5


def test_only_outages_still_going_after_a_time_count():
    from traffic.loadgen import longest_outage
    r = recs((0.0, "timeout"), (0.5, "timeout"), (1.0, "ok"), (2.0, "timeout"), (2.2, "ok"))
    assert longest_outage(r).start == 0.0                       # the longest: 1.0 s
    assert longest_outage(r, after=1.5).start == 2.0            # the one after a cut at 1.5 s


def test_the_open_loops_summary_uses_the_same_outage():
    srv = FakeServer(service_s=0.001, stall=(0.2, 0.6))
    out, records = run(srv, rate=100, duration=1.0, timeout=0.1)
    from traffic.loadgen import longest_outage
    assert out["longest_outage_ms"] == round(longest_outage(records).seconds * 1000, 1)
    # answered at 0.6 s: the calls due in [0.2, 0.5) are over 0.1 s late, those from 0.5 s in time
    assert out["longest_outage_ms"] == 300.0


def test_traffic_settled_on_another_instance_from_the_first_call_that_stayed():
    from traffic.loadgen import settled_at
    r = recs((0.0, "ok", "/B/1"), (0.1, "ok", "/B/2"), (0.2, "ok", "/B/1"),   # a flap
             (0.3, "timeout"), (0.4, "ok", "/B/2"), (0.5, "ok", "/B/2"), (0.9, "ok", "/B/1"))
    away = lambda who: who != "/B/1"                                           # noqa: E731
    assert settled_at(r, 0.0, 0.9, away) == 0.4
    assert settled_at(r, 0.45, 0.9, away) == 0.5
    assert settled_at(r, 0.0, None, away) is None          # back on /B/1 at the end
    assert settled_at(r, 0.0, 0.9, lambda who: who == "/B/3") is None


def test_every_scheduled_call_in_a_window_is_counted():
    from traffic.loadgen import tally
    r = recs((0.0, "ok"), (1.0, "timeout"), (2.0, NOT_SENT), (3.0, "ok"), (4.0, NOT_SENT))
    assert tally(r) == {"scheduled": 5, "ok": 2, "failed": 3, "not_sent": 2,
                        "errors": {"timeout": 1, NOT_SENT: 2}}
    assert tally(r, since=1.0, until=4.0) == {"scheduled": 3, "ok": 1, "failed": 2,
                                              "not_sent": 1,
                                              "errors": {"timeout": 1, NOT_SENT: 1}}


def test_records_read_back_in_intended_order_a_torn_last_line_left_out(tmp_path):
    from traffic.loadgen import read_records
    f = tmp_path / "calls.jsonl"
    f.write_text(json.dumps({"t": 2.0, "status": "ok"}) + "\n"
                 + json.dumps({"t": 1.0, "status": "timeout"}) + "\n" + '{"t": 3.0, "sta')
    assert [r["t"] for r in read_records(f)] == [1.0, 2.0]
