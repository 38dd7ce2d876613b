"""One switch, one P4 feature per test: frames in on veths, frames out, counters."""
from __future__ import annotations

import collections
import time

import pytest
from scapy.layers.l2 import Ether

from controller.switch import p4names as N
from controller.routing.route import DROP, PUNT, Route
from controller.switch.tables import SourceGuard, policy_stage
from topologies.topo import NextHop
from tests.bmv2.conftest import SWITCH_ID, peer_mac, port_mac
from traffic.wire import defs, layers, names

pytestmark = pytest.mark.bmv2


def via(*ports):
    return Route.via(NextHop(p, peer_mac(p)) for p in ports)


def req(dst, src="/A/1", **kw):
    return layers.request(dst, src, "echo", {}, msg_id=kw.pop("msg_id", 1), **kw)


def test_longest_prefix_wins_and_frame_is_rewritten(rig, fib):
    fib.sync({"/A": via(2), "/A/1": via(3)})
    rig.send(1, req("/A/1", hop_limit=9))
    out = rig.expect(3)
    eth = Ether(bytes(out.underlayer))
    assert eth.dst == peer_mac(3) and eth.src == port_mac(3)      # egress rewrite
    assert out.hop_limit == 8 and out.dst_name == "/A/1"           # decremented, intact
    rig.send(1, req("/A/2"))
    assert rig.expect(2).dst_name == "/A/2"                          # falls back to /A
    assert rig.quiet() == {1: 0, 2: 0, 3: 0, 4: 0}


def test_ecmp_spreads_over_members_and_keeps_flows_together(rig, fib):
    fib.sync({"/E": via(2, 3, 4)})
    sources = [f"/client/{i}" for i in range(48)]
    seen = collections.defaultdict(set)
    for src in sources:
        rig.send(1, req("/E/x", src=src))
    out = rig.collect((2, 3, 4), len(sources))
    for port, frames in out.items():
        seen[port] = {layers.parse(raw).src_name for raw in frames}
    assert sum(map(len, out.values())) == len(sources)            # nothing lost
    assert set().union(*seen.values()) == set(sources)            # each source once
    assert sum(1 for p in seen if seen[p]) >= 2                   # spread
    # a second round: every source lands on the port it used before
    where = {s: p for p, ss in seen.items() for s in ss}
    for src in sources[:12]:
        rig.send(1, req("/E/x", src=src))
    again = {layers.parse(raw).src_name: port
             for port, frames in rig.collect((2, 3, 4), 12).items() for raw in frames}
    assert again == {src: where[src] for src in sources[:12]}     # all back, each on its port
    assert rig.quiet() == {1: 0, 2: 0, 3: 0, 4: 0}                # and not one more


# From a pod port (1) and from a core port (3): the program checks a frame from a
# core port on its common path (the parser's select and one condition,
# p4src/parser.p4), every other frame on the other path; both must refuse alike.
@pytest.mark.parametrize("port", [1, 3], ids=["pod_port", "core_port"])
def test_hop_limit_zero_is_dropped_and_counted_one_is_forwarded(rig, fib, port):
    fib.sync({"/A": via(2)})
    before = rig.drops()["hop_limit"]
    rig.send(port, req("/A/1", hop_limit=0))
    assert rig.wait_counter(rig.drops, "hop_limit", before + 1) == before + 1
    rig.send(port, req("/A/1", hop_limit=1))
    assert rig.expect(2).hop_limit == 0
    assert rig.quiet() == {1: 0, 2: 0, 3: 0, 4: 0}


def _bad_frames():
    """(id, drop reason, frame)"""
    good = bytes(req("/A/1"))
    hdr = 14
    yield "truncated", "truncated", good[:hdr + 20]                      # header cut short
    v = bytearray(good); v[hdr] = 7
    yield "bad_version", "bad_version", bytes(v)
    ln = bytearray(good); ln[hdr + 42:hdr + 44] = (5000).to_bytes(2, "big")
    yield "bad_length", "bad_length", bytes(ln)
    rc = bytearray(good); rc[hdr + 40] = 3                               # 84 bytes of records missing
    yield "bad_length_records", "bad_length", bytes(rc)
    many = Ether(type=0x88B5) / layers.DMSC(records=[layers.ProbeRecord()] * 13)
    yield "too_many_records", "too_many_records", bytes(many)
    t = bytearray(good); t[hdr + 1] = 99
    yield "bad_type", "bad_type", bytes(t)
    yield "not_dmsc", "not_dmsc", bytes(Ether(type=0x0800)) + b"\x45" + b"\x00" * 40
    yield "unexpected_type", "unexpected_type", bytes(layers.frame(defs.TYPE_ANNOUNCE_ACK, "/A/1", "/sg"))


@pytest.mark.parametrize("port", [1, 3], ids=["pod_port", "core_port"])
@pytest.mark.parametrize("reason, raw", [f[1:] for f in _bad_frames()], ids=[f[0] for f in _bad_frames()])
def test_malformed_frames_are_dropped_counted_and_the_switch_goes_on(rig, fib, reason, raw, port):
    fib.sync({"/A": via(2)})
    before = rig.drops()
    rig.send(port, raw)
    assert rig.wait_counter(rig.drops, reason, before[reason] + 1) == before[reason] + 1
    after = rig.drops()
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {reason: 1}
    assert rig.quiet(timeout=0.1) == {1: 0, 2: 0, 3: 0, 4: 0}
    assert rig.sw.packet_in(timeout=0.1) is None
    rig.send(port, req("/A/1"))                    # still forwarding
    assert rig.expect(2).dst_name == "/A/1"


@pytest.mark.parametrize("msg_type, port, reason", [
    (defs.TYPE_HELLO, 2, defs.PUNT_CONTROL),
    (defs.TYPE_LSA, 3, defs.PUNT_CONTROL),
    (defs.TYPE_LSA_ACK, 4, defs.PUNT_CONTROL),
    (defs.TYPE_ANNOUNCE, 1, defs.PUNT_ANNOUNCE),
    (defs.TYPE_WITHDRAW, 1, defs.PUNT_ANNOUNCE),
])
def test_control_frames_reach_the_cpu_with_port_and_reason(rig, fib, msg_type, port, reason):
    frame = bytes(layers.frame(msg_type, names.switch_name("any"), names.switch_name("peer"), msg_id=5))
    rig.send(port, frame)
    pin = rig.sw.packet_in(timeout=2)
    assert pin is not None, "no packet-in"
    assert pin.metadata == {N.PACKET_IN_INGRESS_PORT: port, N.PACKET_IN_REASON: reason}
    assert layers.parse(pin.payload).type == msg_type
    assert rig.quiet() == {1: 0, 2: 0, 3: 0, 4: 0}


@pytest.mark.parametrize("msg_type, port, reason", [
    (defs.TYPE_HELLO, 1, "ctrl_from_pod"),
    (defs.TYPE_LSA, 1, "ctrl_from_pod"),
    (defs.TYPE_LSA_ACK, 1, "ctrl_from_pod"),
    (defs.TYPE_ANNOUNCE, 2, "announce_from_core"),
])
def test_signaling_on_the_wrong_kind_of_port_never_reaches_the_cpu(rig, fib, msg_type, port, reason):
    before = rig.drops()[reason]
    rig.send(port, layers.frame(msg_type, names.switch_name("any"), "/evil"))
    assert rig.wait_counter(rig.drops, reason, before + 1) == before + 1
    assert rig.sw.packet_in(timeout=0.3) is None


def test_fib_miss_is_punted_as_no_route(rig, fib):
    before = rig.punts()["no_route"]
    rig.send(1, req("/nowhere/1"))
    pin = rig.sw.packet_in(timeout=2)
    assert pin is not None and pin.metadata[N.PACKET_IN_REASON] == defs.PUNT_NO_ROUTE
    assert layers.parse(pin.payload).dst_name == "/nowhere/1"
    assert rig.punts()["no_route"] == before + 1


def test_punt_local_entry_sends_frames_for_the_switch_to_its_agent(rig, fib):
    fib.sync({names.switch_name("dut"): Route(special=PUNT), "/blackhole": Route(special=DROP)})
    rig.send(2, layers.frame(defs.TYPE_PROBE_REPLY, names.switch_name("dut"), "/B/4", msg_id=3))
    pin = rig.sw.packet_in(timeout=2)
    assert pin is not None and pin.metadata[N.PACKET_IN_REASON] == defs.PUNT_LOCAL
    before = rig.drops()["fib"]
    rig.send(1, req("/blackhole/x"))
    assert rig.wait_counter(rig.drops, "fib", before + 1) == before + 1


def test_packet_out_leaves_the_named_port_unchanged(rig, fib):
    frame = bytes(layers.frame(defs.TYPE_HELLO, names.switch_name("peer"), names.switch_name("dut"), msg_id=77))
    rig.sw.packet_out(frame, egress_port=3)
    raw = rig.links[3].recv(2)
    assert raw == frame
    assert rig.quiet() == {1: 0, 2: 0, 3: 0, 4: 0}


def test_packet_out_with_route_flag_is_forwarded_by_name(rig, fib):
    fib.sync({"/B": via(4)})
    frame = layers.probe("/B/4", names.switch_name("dut"), msg_id=9)
    rig.sw.packet_out(bytes(frame), flags=defs.PKTOUT_ROUTE)
    out = rig.expect(4)
    assert out.type == defs.TYPE_PROBE and out.rec_count == 1
    assert out.records[0].ingress_port == defs.CPU_PORT and out.records[0].egress_port == 4


# A probe with records from a core port takes the common path's second branch
# (the parser's CommonPathRecords), from a pod port the other path.
@pytest.mark.parametrize("port", [1, 4], ids=["pod_port", "core_port"])
def test_probe_gets_a_per_hop_record(rig, fib, port):
    fib.sync({"/A": via(3)})
    prior = layers.ProbeRecord(switch_id=7, ingress_ts=1, egress_ts=2)
    rig.send(port, layers.probe("/A/1", names.switch_name("sg9"), msg_id=4, records=[prior]))
    out = rig.expect(3)
    assert out.rec_count == 2
    rec = out.records[0]                                   # newest first
    assert rec.switch_id == SWITCH_ID
    assert (rec.ingress_port, rec.egress_port) == (port, 3)
    assert rec.ingress_ts > 0 and rec.egress_ts >= rec.ingress_ts
    assert out.records[1].switch_id == 7                    # earlier hop kept
    assert out.dst_name == "/A/1" and out.src_name == names.switch_name("sg9")   # TLVs intact


@pytest.mark.parametrize("port", [1, 4], ids=["pod_port", "core_port"])
def test_full_probe_stack_is_flagged_not_overflowed(rig, fib, port):
    fib.sync({"/A": via(3)})
    recs = [layers.ProbeRecord(switch_id=i) for i in range(defs.MAX_PROBE_RECORDS)]
    rig.send(port, layers.probe("/A/1", "/s", msg_id=4, records=recs))
    out = rig.expect(3)
    assert out.rec_count == defs.MAX_PROBE_RECORDS and out.flags.PROBE_FULL
    assert [r.switch_id for r in out.records] == list(range(defs.MAX_PROBE_RECORDS))


def test_fib_direct_counters_count_per_entry(rig, fib):
    fib.sync({"/A": via(2), "/B": via(3)})
    for _ in range(5):
        rig.send(1, req("/A/1"))
    for _ in range(2):
        rig.send(1, req("/B/7"))
    out = rig.collect((2, 3), 7)
    assert (len(out[2]), len(out[3])) == (5, 2)
    counts = fib.counters()
    assert counts[names.prefix_key("/A")][0] == 5
    assert counts[names.prefix_key("/B")][0] == 2


def test_scsc_policy_overrides_the_fib(rig, fib):
    fib.sync({"/B": via(2)})
    key, plen = names.prefix_key("/B")
    mask = ((1 << plen) - 1) << (names.KEY_BITS - plen)
    src_key = names.name_key("/A/1")
    rig.sw.insert([rig.sw.table_entry(
        N.TABLE_POLICY, {N.MATCH_POLICY_DST_KEY: (key, mask),
                         N.MATCH_POLICY_SRC_KEY: (src_key, (1 << 128) - 1)},
        action=N.ACTION_POLICY_FORWARD,
        params={N.PARAM_POLICY_FORWARD_PORT: 4, N.PARAM_POLICY_FORWARD_DMAC: 0x020000009904},
        priority=10)])
    rig.send(1, req("/B/4", src="/A/1"))
    assert rig.expect(2).dst_name == "/B/4"                 # stage off: entries not consulted
    rig.sw.write(policy_stage(rig.sw, True, [2, 3, 4]))     # what the agent writes with them
    rig.send(1, req("/B/4", src="/A/1"))
    assert rig.expect(4).dst_name == "/B/4"                 # steered by policy
    rig.send(1, req("/B/4", src="/C/2"))
    assert rig.expect(2).dst_name == "/B/4"                 # others: FIB


def test_port_in_counts_every_frame_per_ingress_port(rig, fib):
    """Forwarded, dropped and punted frames alike, each on its own port's cell."""
    fib.sync({"/A": via(2)})
    before = rig.sw.read_counter(N.COUNTER_PORT_IN)
    for _ in range(3):
        rig.send(1, req("/A/1"))                                    # forwarded
    rig.send(1, bytes(Ether(type=0x0800)) + b"\x00" * 46)           # dropped: not DMSC
    rig.send(3, layers.frame(defs.TYPE_HELLO, names.switch_name("any"), "/peer"))  # punted
    assert len(rig.collect((2,), 3)[2]) == 3
    assert rig.sw.packet_in(timeout=2) is not None

    def grown():
        now = rig.sw.read_counter(N.COUNTER_PORT_IN)
        return {p: now.get(p, (0, 0))[0] - before.get(p, (0, 0))[0] for p in (1, 2, 3, 4)}
    deadline = time.monotonic() + 2               # the drop on port 1 may be counted last
    while grown()[1] < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert grown() == {1: 4, 2: 0, 3: 1, 4: 0}


def test_a_pod_port_forwards_only_the_sources_it_holds(rig, fib):
    """RFC 3704's strict uRPF for names: from the pod port only sources the port
    holds (LPM over the accepted prefixes); the rest dropped and counted
    src_not_held; transit from a core port is not checked."""
    fib.sync({"/B": via(2), "/A": via(3)})
    guard = SourceGuard(rig.sw)
    allow_all = guard.read()
    rig.sw.write(guard.diff(allow_all, guard.wanted([("/A/1", 1), ("/C", 1)])))
    try:
        before = rig.drops()["src_not_held"]
        rig.send(1, req("/B/4", src="/A/1"))
        assert rig.expect(2).src_name == "/A/1"                     # held exactly
        rig.send(1, req("/B/4", src="/C/2/x"))
        assert rig.expect(2).src_name == "/C/2/x"                   # under a held prefix
        for src in ("/A/4", "/A", "/D/3"):                          # a sibling, a parent, a stranger
            rig.send(1, req("/B/4", src=src))
        assert rig.wait_counter(rig.drops, "src_not_held", before + 3) == before + 3
        assert rig.quiet([2, 3]) == {2: 0, 3: 0}
        rig.send(2, req("/A/4", src="/D/3"))                        # transit: not checked
        assert rig.expect(3).src_name == "/D/3"
        rig.send(1, layers.probe_reply(layers.parse(bytes(layers.probe(
            "/A/4", names.switch_name("sg9"), msg_id=7))), "/A/4"))  # a reply as another
        assert rig.wait_counter(rig.drops, "src_not_held", before + 4) == before + 4
    finally:
        rig.sw.write(guard.diff(guard.read(), allow_all))


def test_what_a_pod_port_punts_is_policed_by_its_meters(rig, fib):
    """CoPP: a pod port over its announcement meter (burst 5, 2 per second here)
    has the excess dropped and counted announce_policed before the CPU; every
    frame the program received is either punted or counted. Other punts (FIB
    misses) have a meter of their own; a core port's punts are not metered.
    (Frames are paced a little: an unpaced burst loses some before the P4
    program, which this test is not about.)"""
    from controller.switch.tables import copp_updates
    from topologies.topo import Copp
    rig.sw.write(copp_updates(rig.sw, Copp(announce_pps=2, announce_burst=5, punt_pps=2,
                                           punt_burst=5), [1]))

    def port_in(port):
        return rig.sw.read_counter(N.COUNTER_PORT_IN).get(port, (0, 0))[0]

    def burst(port, frame, punt, policed=None, n=40):
        """n frames, paced a little; (frames the program saw, packet-ins the
        agent got, frames policed): every count read once the program has
        accounted for each frame it saw, none ended on an idle gap."""
        in0, punts0, drops0 = port_in(port), rig.punts()[punt], rig.drops()
        for _ in range(n):
            rig.send(port, frame)
            time.sleep(0.002)                       # pacing, not a wait for a condition
        deadline = time.monotonic() + 5
        while port_in(port) - in0 < n and time.monotonic() < deadline:
            time.sleep(0.01)
        seen = port_in(port) - in0

        def counted():
            p = rig.punts()[punt] - punts0
            return p, (rig.drops()[policed] - drops0[policed]) if policed else 0
        while sum(counted()) < seen and time.monotonic() < deadline:
            time.sleep(0.01)
        punted, dropped = counted()
        got = len(rig.packet_ins(punted))
        assert rig.sw.packet_in(timeout=0.1) is None            # not one more
        assert got == punted, (got, punted)                     # each punt reached the agent
        return seen, got, dropped
    try:
        ann = bytes(layers.frame(defs.TYPE_ANNOUNCE, names.switch_name(), "/A/1", msg_id=5))
        seen, got, policed = burst(1, ann, "announce", "announce_policed")
        assert seen == 40, seen                             # none lost before the program
        assert 5 <= got <= 10, got                          # the burst, and a few refilled
        assert got + policed == seen                        # nothing uncounted
        # FIB misses: the other meter
        seen, misses, policed = burst(1, bytes(req("/nowhere/1")), "no_route", "punt_policed")
        assert seen == 40 and 5 <= misses <= 10, (seen, misses)
        assert misses + policed == seen
        hello = bytes(layers.frame(defs.TYPE_HELLO, names.switch_name("any"), "/peer"))
        assert burst(2, hello, "control", n=20) == (20, 20, 0)   # a core port: never metered
    finally:
        rig.sw.write(copp_updates(rig.sw, Copp(announce_pps=1_000_000, announce_burst=1_000_000,
                                               punt_pps=1_000_000, punt_burst=1_000_000), [1]))
