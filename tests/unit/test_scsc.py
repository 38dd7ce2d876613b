"""The SCSC's and the probes' logic on known inputs: jitter, loss and
bandwidth estimates, the thresholds, the choice of replica and path, the
hysteresis, and policy expiry on the agent's side."""
from __future__ import annotations

import collections
import threading
import types

import networkx as nx
import pytest

from controller.agent.probes import PathStats, Prober, Record, jitter_update, records, train_bandwidth_mbps
from controller.proto import scsc_pb2 as pb
from controller.policy_channel import LOCAL
from controller.scsc.schedule import Scheduler, Thresholds
from traffic.wire import codec, defs, layers, names


# -- estimators ---------------------------------------------------------------------
def test_jitter_follows_rfc3550():
    j = 0.0
    for prev, rtt in [(10, 12), (12, 10), (10, 14)]:
        j = jitter_update(j, prev, rtt)
    # J1 = 2/16 = 0.125; J2 = 0.125 + (2 - 0.125)/16; J3 = J2 + (4 - J2)/16
    j1 = 2 / 16
    j2 = j1 + (2 - j1) / 16
    assert j == pytest.approx(j2 + (4 - j2) / 16)


def test_constant_round_trips_have_no_jitter_and_loss_counts_the_window():
    st = PathStats("/B/4")
    for _ in range(5):
        st.answered(10.0, [])
    assert st.jitter_ms == 0 and st.delay_ms == 10.0 and st.loss == 0
    for _ in range(5):
        st.lost()
    assert st.loss == 0.5                       # 5 of the last 10
    for _ in range(10):
        st.lost()
    assert st.loss == 1.0 and st.samples == 20


def test_delay_is_the_median_of_recent_round_trips():
    st = PathStats("/B/4")
    for rtt in (10, 200, 12):                   # one outlier moves nothing
        st.answered(rtt, [])
    assert st.delay_ms == 12


def rec(sid, its, ets):
    return Record(sid, 1, 2, its, ets, 0, 0)


def test_train_bandwidth_is_the_narrowest_links_dispersion():
    # 5 frames of 1000 bytes; at switch 2 they arrive 800 us apart in all
    # (3,200 us spread), at switch 3 8,000 us: the second link is the bottleneck
    trains = [[rec(1, 0, 10), rec(2, 800 * k, 800 * k + 5), rec(3, 2000 * k, 2000 * k + 5)]
              for k in range(5)]
    # (5 - 1) x 8,000 bits / 8,000 us = 4 Mbit/s
    assert train_bandwidth_mbps(trains, 1000) == pytest.approx(4.0)


def test_train_bandwidth_unknown_when_unmeasurable_or_split():
    same = [[rec(1, 0, 1), rec(2, 5, 6)] for _ in range(5)]          # 0 us apart
    assert train_bandwidth_mbps(same, 1000) is None
    split = [[rec(1, 0, 1), rec(2 if k % 2 else 3, k * 100, k * 100)] for k in range(5)]
    assert train_bandwidth_mbps(split, 1000) is None                  # ECMP split the train
    assert train_bandwidth_mbps(same[:1], 1000) is None


def test_records_come_back_in_path_order():
    recs = [layers.ProbeRecord(switch_id=s, ingress_ts=s * 10, egress_ts=s * 10 + 3)
            for s in (4, 13, 1)]                # newest first on the wire: sg4, sr3, sg1
    got = records(b"".join(bytes(r) for r in recs))
    assert [r.switch_id for r in got] == [1, 13, 4]
    assert [r.egress_ts - r.ingress_ts for r in got] == [3, 3, 3]
    with pytest.raises(ValueError):
        records(b"\x00" * 27)


def test_prober_sends_rounds_matches_replies_and_counts_losses():
    now = [0.0]
    p = Prober("sg1", interval_s=0.1, timeout_s=0.3, clock=lambda: now[0])
    frames = p.due(0.0, ["/B/1", "/B/4"])
    sent = [codec.decode(f) for f in frames]
    assert [(f.type, f.dst_name, f.src_name) for f in sent] == [
        (defs.TYPE_PROBE, "/B/1", "/dmsc/sw/sg1"), (defs.TYPE_PROBE, "/B/4", "/dmsc/sw/sg1")]
    assert p.due(0.05, ["/B/1", "/B/4"]) == []                        # not yet
    recs = layers.ProbeRecord(switch_id=1, ingress_ts=5, egress_ts=9)
    reply = layers.probe_reply(layers.parse(bytes(layers.probe("/B/4", "/dmsc/sw/sg1",
                                                               msg_id=sent[1].msg_id,
                                                               records=[recs]))), "/B/4")
    assert p.on_reply(codec.decode(bytes(reply)), 0.02)
    assert p.stats["/B/4"].delay_ms == pytest.approx(20.0)
    assert p.stats["/B/4"].path == [1] and p.stats["/B/4"].hop_us == [4.0]
    p.due(0.5, ["/B/1", "/B/4"])                                        # /B/1's probe timed out
    assert p.stats["/B/1"].loss == 1.0 and p.stats["/B/4"].loss == 0.0
    assert not p.on_reply(codec.decode(bytes(reply)), 0.6)             # a duplicate: not ours


def test_probe_ids_are_not_guessable_from_the_last_one():
    p = Prober("sg1", interval_s=0.1, timeout_s=10, clock=lambda: 0.0)
    ids = []
    for i in range(20):
        ids += [codec.decode(f).msg_id for f in p.due(i * 0.1, ["/B/1", "/B/4"])]
    assert len(set(ids)) == len(ids) and 0 not in ids
    steps = {b - a for a, b in zip(ids, ids[1:])}
    assert len(steps) > len(ids) // 2            # not a counter (the old ids went up by 1)


def test_a_reply_not_from_the_probed_instance_is_counted_and_never_measured():
    """An attacker pod that learns a probe id answers it as itself (its source
    name is checked at its SG): the reply is refused and the genuine one counts."""
    p = Prober("sg1", interval_s=0.1, timeout_s=0.3, clock=lambda: 0.0)
    (f,) = [codec.decode(x) for x in p.due(0.0, ["/B/4"])]
    slow = layers.ProbeRecord(switch_id=1, ingress_ts=0, egress_ts=900_000)   # a fake 0.9 s hop
    probe = layers.parse(bytes(layers.probe("/B/4", "/dmsc/sw/sg1", msg_id=f.msg_id,
                                            records=[slow])))
    forged = codec.decode(bytes(layers.probe_reply(probe, "/B/1")))          # from /B/1
    assert not p.on_reply(forged, 0.25)
    assert p.counters["probe_reply_forged"] == 1 and p.stats["/B/4"].samples == 0
    # Text and key must agree: the /B/4 text over /B/1's key is no answer either.
    raw = bytearray(bytes(layers.probe_reply(probe, "/B/4")))
    raw[14 + 24:14 + 40] = names.key_bytes(names.name_key("/B/1"))           # the src_key field
    assert not p.on_reply(codec.decode(bytes(raw)), 0.25)
    assert p.counters["probe_reply_forged"] == 2
    genuine = codec.decode(bytes(layers.probe_reply(layers.parse(bytes(
        layers.probe("/B/4", "/dmsc/sw/sg1", msg_id=f.msg_id))), "/B/4")))
    assert p.on_reply(genuine, 0.02)
    assert p.stats["/B/4"].delay_ms == pytest.approx(20.0) and p.stats["/B/4"].hop_us == []


def test_a_probe_in_flight_counts_with_its_age():
    p = Prober("sg1", interval_s=0.1, timeout_s=0.3, clock=lambda: 0.0)
    (f,) = [codec.decode(x) for x in p.due(0.0, ["/B/4"])]
    assert p.delay_ms("/B/4", 0.0) == 0.0
    reply = layers.probe_reply(layers.parse(bytes(layers.probe("/B/4", "/dmsc/sw/sg1",
                                                               msg_id=f.msg_id))), "/B/4")
    p.on_reply(codec.decode(bytes(reply)), 0.02)                         # 20 ms
    p.due(0.1, ["/B/4"])                                                  # the next, unanswered
    assert p.delay_ms("/B/4", 0.11) == pytest.approx(20.0)               # 10 ms in flight: less
    assert p.delay_ms("/B/4", 0.28) == pytest.approx(180.0)              # 180 ms and counting


# -- the scheduler ---------------------------------------------------------------------
def fig2_graph():
    """Figure 2's routers and costs; /B served at sg1 and sg4, /A at sg1 and sg4."""
    g = nx.Graph()
    for a, b in [("sr1", "sr2"), ("sr2", "sr3"), ("sr3", "sr1"), ("sg1", "sr1"), ("sg1", "sr3"),
                 ("sg2", "sr2"), ("sg2", "sr3"), ("sg3", "sr3"), ("sg3", "sr1"), ("sg4", "sr3"),
                 ("sg4", "sr2")]:
        g.add_edge(a, b, cost=1)
    for n in g.nodes:
        g.nodes[n]["prefixes"] = {names.switch_name(n): defs.CPU_PORT}
    g.nodes["sg1"]["prefixes"].update({"/A": 1, "/A/1": 1, "/B": 1, "/B/1": 1})
    g.nodes["sg4"]["prefixes"].update({"/A": 1, "/A/4": 1, "/B": 1, "/B/4": 1})
    g.nodes["sg3"]["prefixes"].update({"/D": 1, "/D/3": 1})
    return g


def report(inst, delay=10.0, jitter=1.0, loss=0.0, bw=0.0, samples=20):
    return pb.PathReport(instance=inst, delay_ms=delay, jitter_ms=jitter, loss=loss,
                         bandwidth_mbps=bw, samples=samples)


def tel(now, **by_inst):
    return {("sg1", i.replace("_", "/")): (m, now) for i, m in by_inst.items()}


@pytest.mark.parametrize("m, why", [
    (report("/B/1", delay=100), "delay"),
    (report("/B/1", jitter=50), "jitter"),
    (report("/B/1", loss=0.5), "loss"),
    (report("/B/1", bw=5.0), "bandwidth"),
    (report("/B/1", delay=99.9, jitter=49.9, loss=0.4, bw=5.1), None),
    (report("/B/1", loss=1.0, samples=5), None),       # too few probes to judge loss
])
def test_the_draft_conditions(m, why):
    got = Thresholds(bandwidth_mbps=5.0).violation(m)
    assert (got is None) if why is None else why in got


def test_no_violation_no_policy_and_a_violation_steers_to_the_best_replica_on_every_hop():
    s = Scheduler(onset_s=0.0)
    g = fig2_graph()
    assert s.evaluate(g, tel(0, _B_1=report("/B/1"), _B_4=report("/B/4")), 0) == []
    entries = s.evaluate(g, tel(1, _B_1=report("/B/1", delay=300), _B_4=report("/B/4")), 1)
    by = {(e.switch, e.dst): e for e in entries}
    assert by[("sg1", "/B")].next == "sr3" and by[("sr3", "/B")].next == "sg4"
    assert by[("sg4", "/B")].next == LOCAL + "/B/4"
    assert by[("sg1", "/B")].src == ("/A/1", "/B/1")   # the ingress SG's own instances
    assert {e.switch for e in entries} == {"sg1", "sr3", "sg4"}
    d = s.decisions[("sg1", "/B")]
    assert d.chosen == "/B/4" and d.path == ["sg1", "sr3", "sg4"] and "delay" in d.why


def test_a_violation_must_last_the_onset_time():
    s = Scheduler(onset_s=0.3)
    g = fig2_graph()
    slow = tel(0, _B_1=report("/B/1", delay=300), _B_4=report("/B/4"))
    assert s.evaluate(g, slow, 0.0) == []
    assert s.evaluate(g, {k: (m, 0.2) for k, (m, _t) in slow.items()}, 0.2) == []
    assert s.evaluate(g, {k: (m, 0.3) for k, (m, _t) in slow.items()}, 0.3) != []


def test_hysteresis_traffic_returns_only_after_restore_time():
    s = Scheduler(onset_s=0.0, restore_s=3.0)
    g = fig2_graph()
    s.evaluate(g, tel(0, _B_1=report("/B/1", delay=300), _B_4=report("/B/4")), 0)
    healthy = lambda t: tel(t, _B_1=report("/B/1"), _B_4=report("/B/4"))  # noqa: E731
    assert s.evaluate(g, healthy(1), 1) != []            # healthy, but not for long
    assert s.evaluate(g, healthy(3.9), 3.9) != []
    assert s.evaluate(g, healthy(4.0), 4.0) == []         # 3 s of health: back to SPF
    assert s.decisions[("sg1", "/B")].chosen == ""


def test_a_relapse_during_restore_restarts_the_clock():
    s = Scheduler(onset_s=0.0, restore_s=3.0)
    g = fig2_graph()
    s.evaluate(g, tel(0, _B_1=report("/B/1", delay=300), _B_4=report("/B/4")), 0)
    s.evaluate(g, tel(1, _B_1=report("/B/1"), _B_4=report("/B/4")), 1)
    s.evaluate(g, tel(2, _B_1=report("/B/1", delay=300), _B_4=report("/B/4")), 2)
    assert s.evaluate(g, tel(4.5, _B_1=report("/B/1"), _B_4=report("/B/4")), 4.5) != []


def test_no_healthy_replica_no_steering_and_stale_telemetry_is_unknown():
    s = Scheduler(onset_s=0.0, stale_s=2.0)
    g = fig2_graph()
    both_bad = tel(0, _B_1=report("/B/1", delay=300), _B_4=report("/B/4", delay=300))
    assert s.evaluate(g, both_bad, 0) == []
    assert "no healthy replica" in s.decisions[("sg1", "/B")].why
    old = tel(0, _B_1=report("/B/1", delay=300), _B_4=report("/B/4"))
    assert s.evaluate(g, old, 5.0) == []                   # 5 s old: neither bad nor good


def test_the_path_avoids_a_switch_that_holds_frames():
    s = Scheduler(onset_s=0.0)
    g = fig2_graph()
    t = tel(0, _B_1=report("/B/1", delay=300), _B_4=report("/B/4"))
    s.evaluate(g, t, 0, hop_ms={"sr3": 25.0})             # sr3 adds 25 ms: 3.5 hops' worth
    assert s.decisions[("sg1", "/B")].path == ["sg1", "sr1", "sr2", "sg4"]
    assert s.push_order()[:4] == ["sg4", "sr2", "sr1", "sg1"]   # last hop first
    assert s.hop_index() == {"sg1": 0, "sr1": 1, "sr2": 2, "sg4": 3}


def test_a_chosen_instance_that_degrades_too_keeps_the_traffic_when_nothing_is_better():
    s = Scheduler(onset_s=0.0)
    g = fig2_graph()
    s.evaluate(g, tel(0, _B_1=report("/B/1", delay=300), _B_4=report("/B/4")), 0)
    s.evaluate(g, tel(1, _B_1=report("/B/1", delay=300), _B_4=report("/B/4", delay=150)), 1)
    d = s.decisions[("sg1", "/B")]
    assert d.chosen == "/B/4" and "no healthier replica" in d.why   # the default is no better


def test_a_chosen_instance_that_degrades_is_left_for_a_healthy_one():
    g = fig2_graph()
    g.nodes["sg2"]["prefixes"].update({"/B": 1, "/B/2": 1})          # a third replica
    s = Scheduler(onset_s=0.0)
    t0 = {("sg1", "/B/1"): (report("/B/1", delay=300), 0), ("sg1", "/B/4"): (report("/B/4"), 0),
          ("sg1", "/B/2"): (report("/B/2", delay=30), 0)}
    s.evaluate(g, t0, 0)
    assert s.decisions[("sg1", "/B")].chosen == "/B/4"
    t1 = {**{k: (m, 1) for k, (m, _t) in t0.items()},
          ("sg1", "/B/4"): (report("/B/4", loss=1.0), 1)}
    s.evaluate(g, t1, 1)
    assert s.decisions[("sg1", "/B")].chosen == "/B/2"


# -- policies on the agent -------------------------------------------------------------
class FakeSw:
    def __init__(self):
        self.writes = []

    def write(self, ups):
        self.writes.append(ups)


class FakeAgent:
    def __init__(self):
        from controller.agent.gateway import Held
        from controller.routing.router import Neighbor
        self.name = "sg1"
        self.lock = threading.RLock()
        self.fib = types.SimpleNamespace(lock=threading.Lock())     # the FIB writer's lock
        self.counters = collections.Counter()
        self.sw = FakeSw()

        class R:
            neighbors = {3: Neighbor("sr3", 13, 3, "02:00:00:00:0d:03", 0.0, two_way=True)}
            ports = {}
        self.router = R()

        class G:
            held = {"/B/1": Held("/B/1", 1, "02:00:01:00:00:01", "k", "/B/1", 1e9, 0)}
        self.gateway = G()


def policy_set(key, version, entries, sent_at, lifetime=1.5, switch="sg1"):
    from controller.keys import sign
    ps = pb.PolicySet(switch=switch, version=version, lifetime_s=lifetime, sent_at=sent_at,
                      scsc="scsc", entries=entries)
    return sign(ps, key)


@pytest.fixture
def policies(monkeypatch):
    from controller.agent import policies as mod
    monkeypatch.setattr(mod, "policy_entry", lambda sw, dst, src, port, mac, prio:
                        (dst, src, port, mac, prio))
    monkeypatch.setattr(mod, "policy_stage", lambda sw, on, core: [("stage", on)])
    wall, mono = [1000.0], [50.0]
    return mod.Policies(FakeAgent(), b"k", clock=lambda: wall[0], mono=lambda: mono[0]), wall, mono


def test_policies_are_resolved_written_and_expire(policies):
    from controller.switch.p4rt import DELETE, INSERT
    p, wall, mono = policies
    ack = p.set(policy_set(b"k", 1, [pb.PolicyEntry(dst="/B", src=["/A/1"], next="sr3")], wall[0]))
    assert ack.ok, ack
    (ups,) = p.agent.sw.writes
    (op, (dst, src, port, mac, prio)), stage = ups
    assert stage == ("stage", True)                                    # the stage turned on
    assert op == INSERT and port == 3 and mac == "02:00:00:00:0d:03"
    assert dst == (names.name_key("/B"), (1 << 128) - 1)              # the service name, exactly
    assert src == (names.name_key("/A/1"), ((1 << 64) - 1) << 64)     # /A/1 and below
    mono[0] += 1.0
    p.expire()
    assert len(p.agent.sw.writes) == 1                                 # still alive
    mono[0] += 1.0
    p.expire()                                                          # 2 s > 1.5 s lifetime
    assert [op for op, _e in p.agent.sw.writes[-1]] == [DELETE, "stage"]
    assert p.agent.sw.writes[-1][-1] == ("stage", False)               # and off with the last
    assert p.installed == {} and p.agent.counters["policies_expired"] == 1


@pytest.mark.parametrize("mutate, why", [
    (lambda ps: setattr(ps, "auth", b"x" * 32), "bad_auth"),
    (lambda ps: None, "stale_version"),
])
def test_policy_sets_refused_by_reason(policies, mutate, why):
    p, wall, _mono = policies
    assert p.set(policy_set(b"k", 5, [], wall[0])).ok
    ps = policy_set(b"k", 5, [], wall[0])
    mutate(ps)
    ack = p.set(ps)
    assert not ack.ok and ack.error.startswith(why)
    assert p.agent.counters[f"policy_refused_{why}"] == 1


def test_a_policy_set_far_ahead_is_refused_and_does_not_lock_the_scsc_out(policies):
    """Versions count the SCSC's milliseconds: 2^64-1, once taken, would have
    made every later set stale_version."""
    p, wall, _mono = policies
    ack = p.set(policy_set(b"k", 2**64 - 1, [], wall[0]))
    assert not ack.ok and ack.error.startswith("version_ahead"), ack
    assert p.agent.counters["policy_refused_version_ahead"] == 1
    assert p.set(policy_set(b"k", int(wall[0] * 1000), [], wall[0])).ok    # the real SCSC's


def test_a_message_signed_for_another_purpose_does_not_verify():
    from controller import keys
    secret = b"domain secret"
    routing, telemetry, policy = (keys.derive(secret, k) for k in keys.PURPOSES)
    assert len({routing, telemetry, policy, secret}) == 4
    t = keys.sign(pb.Telemetry(sg="sg1", seq=1, sent_at=1.0), routing)
    assert not keys.verify(t, telemetry) and keys.verify(t, routing)
    assert keys.derive(b"another secret", keys.ROUTING) != routing


def test_policy_sets_stale_for_another_switch_or_unresolvable_are_refused(policies):
    p, wall, _mono = policies
    assert p.set(policy_set(b"k", 1, [], wall[0] - 60)).error.startswith("stale")
    assert p.set(policy_set(b"k", 2, [], wall[0], switch="sg2")).error.startswith("wrong_switch")
    bad = [pb.PolicyEntry(dst="/B", src=["/A/1"], next="sr1")]        # not a neighbour
    assert p.set(policy_set(b"k", 3, bad, wall[0])).error.startswith("unknown_next")
    gone = [pb.PolicyEntry(dst="/B", src=["/A/1"], next=LOCAL + "/B/9")]
    assert p.set(policy_set(b"k", 4, gone, wall[0])).error.startswith("unknown_next")
    assert p.set(policy_set(b"k", 5, [], wall[0], lifetime=0)).error.startswith("malformed")
    assert p.agent.sw.writes == []
