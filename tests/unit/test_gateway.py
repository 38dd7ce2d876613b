"""An SG's gateway duties against a scripted SPA and a recording switch: what
enters the LSA, what is refused and counted, fail-closed, leases, revocation."""
from __future__ import annotations

import collections
import threading

import pytest

from controller.agent.gateway import Gateway, Held, Job
from controller.routing.router import Config, Port, Router
from controller.spa.spa_client import SpaUnavailable
from controller.spa.validate import INVALID, NOT_FOUND, VALID, AnnounceVerdict
from traffic.identity import Identity
from traffic.wire import codec, defs, names

POD = Identity.generate()
POD_MAC = "02:00:01:00:00:04"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class RecordingSwitch:
    def __init__(self):
        self.out = []

    def packet_out(self, frame, egress_port=0, flags=0):
        self.out.append((codec.decode(frame), egress_port))


class FakeAgent:
    def __init__(self):
        self.name = "sg4"
        self.lock = threading.RLock()
        self.counters = collections.Counter()
        self.router = Router("sg4", 4, "sg", {1: Port("pod", "02:00:00:00:04:01"),
                                              2: Port("core", "02:00:00:00:04:02"),
                                              3: Port("pod", "02:00:00:00:04:03")},
                             b"k", Config())
        self.sw = RecordingSwitch()
        self.stop_event = threading.Event()
        self.woken = 0

    def wake(self):
        self.woken += 1


class ScriptedSpa:
    """Answers from a list of Verdicts or exceptions; records what it was asked."""

    def __init__(self, answers=(), revalidate=()):
        self.answers, self.reval = list(answers), list(revalidate)
        self.asked = []
        self.batches = []
        self.addr = "127.0.0.1:1"

    def check(self, ann, sg, port):
        self.asked.append((ann.prefix, sg, port))
        a = self.answers.pop(0) if self.answers else AnnounceVerdict(VALID, "ok")
        if isinstance(a, Exception):
            raise a
        return a

    def check_many(self, items):
        self.batches.append(len(items))
        out = []
        for it in items:
            try:
                out.append(self.check(*it))
            except SpaUnavailable as exc:
                out.append(exc)
        return out

    def revalidate(self, sg, held):
        a = self.reval.pop(0) if self.reval else [AnnounceVerdict(VALID, "ok") for _ in held]
        if isinstance(a, Exception):
            raise a
        return a


def pod_prefixes(agent) -> dict:
    """What the SG delivers to its pods (its own name, to its agent, aside)."""
    return {p: v for p, v in agent.router.local_prefixes.items() if not names.is_reserved(p)}


def gateway(spa, lease_s=6.0):
    clock = Clock()
    agent = FakeAgent()
    return Gateway(agent, spa, lease_s=lease_s, clock=clock), agent, clock


def job(prefix="/B/4", withdraw=False, port=1, identity=POD):
    ann = identity.announcement(prefix, withdraw=withdraw, src="/B/4", msg_id=9)
    return Job(ann, port, POD_MAC, 100.0)


def answers(agent):
    return [(f.type, f.text(codec.TLV_PREFIX), port) for f, port in agent.sw.out]


def test_valid_enters_the_lsa_and_is_acked_on_the_pod_port():
    gw, agent, _ = gateway(ScriptedSpa())
    gw.handle(job())
    assert pod_prefixes(agent) == {"/B/4": (1, POD_MAC)}
    assert answers(agent) == [(defs.TYPE_ANNOUNCE_ACK, "/B/4", 1)]
    assert agent.counters["announce_accepted"] == 1 and agent.woken >= 1


@pytest.mark.parametrize("verdict", [AnnounceVerdict(INVALID, "key_not_authorized", "x"),
                                     AnnounceVerdict(NOT_FOUND, "not_covered", "x"),
                                     AnnounceVerdict(INVALID, "replay", "x")])
def test_anything_but_valid_is_refused_counted_and_nacked(verdict):
    gw, agent, _ = gateway(ScriptedSpa([verdict]))
    gw.handle(job())
    assert pod_prefixes(agent) == {}
    (nack, _port), = agent.sw.out
    assert nack.type == defs.TYPE_ANNOUNCE_NACK
    assert int.from_bytes(nack.tlv(codec.TLV_STATUS)[:2], "big") == codec.STATUS_REFUSED
    assert agent.counters[f"announce_refused_{verdict.reason}"] == 1


def test_spa_down_fails_closed_then_accepts_when_it_is_back():
    spa = ScriptedSpa([SpaUnavailable("down"), SpaUnavailable("down")])
    gw, agent, clock = gateway(spa)
    gw.handle(job())
    assert pod_prefixes(agent) == {} and agent.sw.out == []   # no answer: it waits
    assert list(gw.pending) == [(1, "/B/4")]
    clock.now += 1.0
    gw._retry_pending(clock.now)                  # still down: still pending
    assert list(gw.pending) == [(1, "/B/4")] and pod_prefixes(agent) == {}
    clock.now += 2.0
    gw._retry_pending(clock.now)                  # back: accepted, acked
    assert gw.pending == {} and "/B/4" in pod_prefixes(agent)
    assert answers(agent) == [(defs.TYPE_ANNOUNCE_ACK, "/B/4", 1)]
    assert agent.counters["spa_unavailable"] == 2


def test_spa_down_keeps_and_renews_what_is_held():
    spa = ScriptedSpa([AnnounceVerdict(VALID, "ok"), SpaUnavailable("down")])
    gw, agent, clock = gateway(spa, lease_s=6.0)
    gw.handle(job())
    clock.now += 5.0
    gw.handle(job())                              # the renewal, with no SPA answering
    assert agent.counters["announce_renewed_without_spa"] == 1
    clock.now += 5.0                              # 10 s after acceptance, 5 after renewal
    gw.expire(clock.now)
    assert "/B/4" in pod_prefixes(agent)
    spa.reval = [SpaUnavailable("down")]
    gw.recheck()                                  # nothing is withdrawn for want of an answer
    assert "/B/4" in pod_prefixes(agent)


def test_an_expired_lease_withdraws_the_prefix():
    gw, agent, clock = gateway(ScriptedSpa(), lease_s=6.0)
    gw.handle(job())
    clock.now += 6.5
    gw.expire(clock.now)
    assert pod_prefixes(agent) == {} and gw.held == {}
    assert agent.counters["lease_expired"] == 1


def test_leases_end_each_at_its_time_with_scans_only_when_one_can_have_ended():
    """expire() runs every tick; it scans the held prefixes only once the soonest
    lease end has passed, yet each lease ends on time: renewed ones later, one
    accepted after an idle scan (nothing held) on its own time."""
    gw, agent, clock = gateway(ScriptedSpa(), lease_s=6.0)
    gw.expire(clock.now)                           # nothing held: the mark is infinite
    for i in range(1, 6):
        gw.handle(job(f"/B/{i}"))
        clock.now += 1.0                           # /B/i leased until 100 + i + 5
    gw.handle(job("/B/1"))                         # renewed at 105: until 111
    class Counted(dict):
        scans = 0

        def items(self):
            Counted.scans += 1
            return super().items()

    gw.held = Counted(gw.held)
    ended = {}
    while clock.now < 113:
        clock.now += 0.1
        gw.expire(clock.now)
        for p in [p for p in ("/B/1", "/B/2", "/B/3", "/B/4", "/B/5")
                  if p not in ended and p not in gw.held]:
            ended[p] = round(clock.now, 1)
    assert ended == {"/B/2": 107.1, "/B/3": 108.1, "/B/4": 109.1, "/B/5": 110.1, "/B/1": 111.1}
    assert agent.counters["lease_expired"] == 5 and pod_prefixes(agent) == {}
    assert Counted.scans <= 6                      # 130 ticks: a scan per lease end


def test_revocation_found_by_recheck_withdraws_and_tells_the_pod():
    spa = ScriptedSpa(revalidate=[[AnnounceVerdict(NOT_FOUND, "not_covered", "revoked")]])
    gw, agent, _ = gateway(spa)
    gw.handle(job())
    gw.recheck()
    assert pod_prefixes(agent) == {} and agent.counters["withdrawn_revoked"] == 1
    assert answers(agent)[-1] == (defs.TYPE_ANNOUNCE_NACK, "/B/4", 1)


def test_withdrawal_only_from_the_holding_port_and_key():
    gw, agent, _ = gateway(ScriptedSpa())
    gw.handle(job())
    gw.handle(job(withdraw=True, port=3))         # another port: refused
    assert "/B/4" in pod_prefixes(agent)
    assert agent.counters["announce_refused_not_held"] == 1
    other = Identity.generate()                   # the holding port, another key (the SPA
    gw.handle(job(withdraw=True, port=1, identity=other))   # says valid): refused
    assert "/B/4" in pod_prefixes(agent) and gw.held["/B/4"].key_id == POD.key_id
    assert agent.counters["announce_refused_not_held"] == 2
    assert answers(agent)[-1] == (defs.TYPE_ANNOUNCE_NACK, "/B/4", 1)
    gw.handle(job(withdraw=True, port=1))
    assert pod_prefixes(agent) == {} and agent.counters["withdraw_accepted"] == 1


def test_with_no_spa_answering_a_withdrawal_only_from_the_holding_port_and_key():
    spa = ScriptedSpa([AnnounceVerdict(VALID, "ok")] + [SpaUnavailable("down")] * 3)
    gw, agent, _ = gateway(spa)
    gw.handle(job())
    gw.handle(job(withdraw=True, port=3))                               # another port
    gw.handle(job(withdraw=True, port=1, identity=Identity.generate()))  # another key
    assert "/B/4" in pod_prefixes(agent) and agent.counters["withdraw_accepted_without_spa"] == 0
    assert answers(agent) == [(defs.TYPE_ANNOUNCE_ACK, "/B/4", 1)]      # no answer to either
    gw.handle(job(withdraw=True, port=1))                               # its own key and port
    assert pod_prefixes(agent) == {} and agent.counters["withdraw_accepted_without_spa"] == 1


SIBLING = Identity.generate()          # another pod of service /B, behind the same SG


def local_hops(agent, prefix):
    """The ports the SG's FIB delivers ``prefix`` to (after an SPF run)."""
    agent.router._run_spf(0.0)
    route = agent.router.routes().get(prefix)
    return sorted(h.port for h in route.hops) if route else []


def test_a_second_pod_serving_the_prefix_shares_it_and_its_calls():
    # 1,000 instances on 64 pods (16 behind each SG): several pods of one SG
    # serve /s12; before, the second one's /s12 was refused held_elsewhere and
    # its pod re-announced it forever
    gw, agent, _ = gateway(ScriptedSpa())
    gw.handle(job("/B", port=1))
    gw.handle(job("/B", port=3, identity=SIBLING))
    assert pod_prefixes(agent) == {"/B": (1, POD_MAC)}           # the LSA's port: the first
    assert local_hops(agent, "/B") == [1, 3]                      # the FIB: both (ECMP)
    assert answers(agent) == [(defs.TYPE_ANNOUNCE_ACK, "/B", 1), (defs.TYPE_ANNOUNCE_ACK, "/B", 3)]
    assert agent.counters["announce_shared"] == 1 and agent.counters["announce_accepted"] == 1
    gw.handle(job("/B", port=3, identity=SIBLING))               # its renewal
    assert agent.counters["announce_renewed"] == 1 and agent.counters["announce_shared"] == 1
    assert [(h.prefix, h.port) for h in gw.state()] == [("/B", 1), ("/B", 3)]


def test_when_the_holder_goes_a_sharer_holds_the_prefix_and_it_never_leaves_the_fib():
    gw, agent, clock = gateway(ScriptedSpa(), lease_s=6.0)
    gw.handle(job("/B", port=1))
    gw.handle(job("/B", port=3, identity=SIBLING))
    gw.handle(job("/B", withdraw=True, port=1))
    assert pod_prefixes(agent)["/B"][0] == 3 and agent.counters["sharer_promoted"] == 1
    assert local_hops(agent, "/B") == [3]
    gw.handle(job("/B", port=1))                                  # back: now it shares
    assert pod_prefixes(agent)["/B"][0] == 3 and local_hops(agent, "/B") == [1, 3]
    clock.now += 3.0
    gw.handle(job("/B", port=1))                                  # port 1 renews, 3 does not
    clock.now += 3.5
    gw.expire(clock.now)                                          # 3's lease is over
    assert pod_prefixes(agent)["/B"][0] == 1 and agent.counters["sharer_promoted"] == 2
    assert local_hops(agent, "/B") == [1]
    clock.now += 10.0
    gw.expire(clock.now)                                          # and 1's: gone
    assert pod_prefixes(agent) == {} and gw.sharers == {} and local_hops(agent, "/B") == []


def test_a_share_is_withdrawn_only_by_its_own_key_and_rechecked_by_the_spa():
    spa = ScriptedSpa()
    gw, agent, _ = gateway(spa)
    gw.handle(job("/B", port=1))
    gw.handle(job("/B", port=3, identity=SIBLING))
    gw.handle(job("/B", withdraw=True, port=3))                   # port 3, the holder's key
    assert agent.counters["announce_refused_not_held"] == 1 and local_hops(agent, "/B") == [1, 3]
    spa.reval = [[AnnounceVerdict(VALID, "ok"), AnnounceVerdict(NOT_FOUND, "not_covered", "x")]]
    gw.recheck()                                                  # the share is revoked
    assert gw.sharers == {} and agent.counters["withdrawn_revoked"] == 1
    assert pod_prefixes(agent) == {"/B": (1, POD_MAC)} and local_hops(agent, "/B") == [1]
    assert answers(agent)[-1] == (defs.TYPE_ANNOUNCE_NACK, "/B", 3)
    gw.handle(job("/B", withdraw=True, port=3, identity=SIBLING))  # nothing left to withdraw
    assert agent.counters["announce_refused_not_held"] == 2


def test_no_spa_configured_refuses_everything():
    gw, agent, _ = gateway(None)
    gw.handle(job())
    assert pod_prefixes(agent) == {} and agent.counters["announce_refused_no_spa"] == 1


def test_malformed_announcements_are_counted_by_reason_and_never_queued():
    gw, agent, _ = gateway(ScriptedSpa())
    gw.on_frame(1, b"\x00" * 10)                                     # not even a frame
    no_sig = codec.encode(defs.TYPE_ANNOUNCE, "/dmsc/sw", "/B/4",
                          [(codec.TLV_PREFIX, b"/B/4")])            # missing TLVs
    gw.on_frame(1, no_sig)
    bad = POD.announcement("/B/4").encode(eth_src=POD_MAC).replace(b"/B/4", b"B//4", 1)
    gw.on_frame(1, bad)                                               # a prefix that is no name
    assert len(gw.jobs) == 0
    assert agent.counters["announce_refused_malformed_frame"] == 1
    assert agent.counters["announce_refused_malformed_missing_tlv"] == 1
    assert agent.counters["announce_refused_malformed_bad_name"] == 1
    gw.on_frame(1, POD.announcement("/B/4").encode(eth_src=POD_MAC))
    assert len(gw.jobs) == 1 and gw.jobs.get(0).mac == POD_MAC


def test_a_pod_cannot_claim_a_switch_name():
    gw, agent, _ = gateway(ScriptedSpa())
    gw.on_frame(1, POD.announcement("/dmsc/sw/sg1").encode(eth_src=POD_MAC))
    assert len(gw.jobs) == 0 and agent.counters["announce_refused_reserved_name"] == 1
    (nack, port), = agent.sw.out
    assert nack.type == defs.TYPE_ANNOUNCE_NACK and port == 1


# -- one pod cannot slow the others (bounded, fair intake) ---------------------------

def test_a_flooding_port_is_shed_while_another_ports_claim_and_renewals_go_first():
    gw, agent, _ = gateway(ScriptedSpa())
    agent.router.ports[3] = Port("pod", "02:00:00:00:04:03")
    rogue = Identity.generate()
    for i in range(200):                                       # a flood of new claims on port 1
        gw.on_frame(1, rogue.announcement(f"/X/{i}").encode(eth_src=POD_MAC))
    assert agent.counters["announce_shed_queue_full"] == 200 - gw.jobs.per_port
    gw.held["/B/4"] = Held("/B/4", 1, POD_MAC, POD.key_id, "/B/4", 1e9, 0.0)
    gw.on_frame(1, POD.announcement("/B/4").encode(eth_src=POD_MAC))     # a renewal, port 1
    other = Identity.generate()
    gw.on_frame(3, other.announcement("/C/9").encode(eth_src="02:00:01:00:00:09"))  # port 3
    first = [gw.jobs.get(0).ann.prefix for _ in range(3)]
    assert first == ["/B/4", "/X/0", "/C/9"]                   # renewal, then round robin
    assert len(gw.jobs) == gw.jobs.per_port - 1
    assert agent.counters["announce_received"] == 202


def test_a_job_that_waited_past_the_window_never_costs_an_spa_call():
    spa = ScriptedSpa([AnnounceVerdict(VALID, "ok")])
    gw, agent, clock = gateway(spa)
    gw.on_frame(1, POD.announcement("/B/4").encode(eth_src=POD_MAC))
    clock.now += gw.window_s + 1
    assert gw.jobs.get(0) is None and len(gw.jobs.expired) == 1
    assert spa.asked == []


def test_a_stale_timestamp_is_answered_by_the_sg_without_the_spa():
    import time
    spa = ScriptedSpa()
    gw, agent, _ = gateway(spa)
    old = POD.announcement("/B/4", timestamp_ns=time.time_ns() - 3600 * 10**9)
    gw.on_frame(1, old.encode(eth_src=POD_MAC))
    assert len(gw.jobs) == 0 and spa.asked == []
    assert agent.counters["announce_refused_stale_timestamp"] == 1
    (nack, port), = agent.sw.out
    assert nack.type == defs.TYPE_ANNOUNCE_NACK and b"stale_timestamp" in nack.tlv(codec.TLV_BODY)


def test_the_worker_asks_the_spa_about_what_waits_together_and_answers_in_turn():
    from tests.support.wait import poll
    spa = ScriptedSpa()
    gw, agent, _ = gateway(spa)
    gw.clock = __import__("time").monotonic
    gw.jobs.clock = gw.clock
    prefixes = [f"/B/{i}" for i in range(5)]
    for p in prefixes:
        assert gw.jobs.put(1, job(p), renewal=False)
    gw.start()
    try:
        poll(lambda: len(agent.sw.out) == 5, 5, "five answers")
    finally:
        agent.stop_event.set()
        gw.join(2)
    assert spa.batches == [5]                                    # one round trip, not five
    assert answers(agent) == [(defs.TYPE_ANNOUNCE_ACK, p, 1) for p in prefixes]
