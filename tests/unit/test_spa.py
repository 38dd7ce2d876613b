"""The SPA: registry files, verdicts (RFC 6811 states, maxLength, keys),
signature and freshness checks, and the gRPC service with failover."""
from __future__ import annotations

import time

import pytest

from controller.spa.spa_client import SpaClient, SpaError, SpaUnavailable
from controller.spa.prefix_registry import Registry, RegistryError
from controller.spa.spa_service import serve
from controller.spa.validate import INVALID, NOT_FOUND, VALID, Validator
from topologies.emu.child_processes import free_port
from tests.conftest import ROOT
from tests.support.attacker import crc32_twin
from traffic.identity import Identity
from traffic.wire.announcement import Announcement

POD1, POD4, ROGUE = Identity.generate(), Identity.generate(), Identity.generate()
NOW = 1_800_000_000.0


def registry():
    r = Registry()
    r.add_key("pod1", POD1.public_raw)
    r.add_key("pod4", POD4.public_raw)
    r.add_key("rogue", ROGUE.public_raw)
    r.authorize("/B", 2, ["pod1", "pod4"])
    r.authorize("/A", 2, ["pod1"])
    return r


def validator(window_s=30.0):
    clock = [NOW]
    v = Validator(registry(), window_s, clock=lambda: clock[0])
    return v, clock


def ann(ident, prefix, **kw):
    kw.setdefault("timestamp_ns", int(NOW * 1e9))
    return ident.announcement(prefix, **kw)


@pytest.mark.parametrize("who, prefix, state, reason", [
    (POD4, "/B/4", VALID, "ok"),                      # covered by /B, key listed, depth 2 <= 2
    (POD4, "/B", VALID, "ok"),
    (POD1, "/A/1", VALID, "ok"),
    (POD4, "/A/4", INVALID, "key_not_authorized"),    # /A lists pod1 only
    (ROGUE, "/B/9", INVALID, "key_not_authorized"),   # a hijack of a covered prefix
    (POD4, "/B/4/x", INVALID, "too_deep"),            # deeper than max_depth 2
    (POD4, "/Z/1", NOT_FOUND, "not_covered"),         # nothing covers it
])
def test_rfc6811_states(who, prefix, state, reason):
    v, _ = validator()
    got = v.check(ann(who, prefix))
    assert (got.state, got.reason) == (state, reason), got.text
    assert v.counters[f"{state}_{reason}"] == 1


def test_a_deeper_authorization_of_the_same_key_makes_it_valid():
    v, _ = validator()
    v.registry.authorize("/B/4", 3, ["pod4"])
    assert v.check(ann(POD4, "/B/4/x")).valid


def test_forged_signature_is_refused():
    v, _ = validator()
    good = ann(POD4, "/B/4")
    forged = Announcement(good.msg_type, "/B/5", good.key_id, good.timestamp_ns, good.nonce,
                          good.signature)                 # signature of another prefix
    assert v.check(forged).reason == "bad_signature"
    by_rogue = ROGUE.announcement("/B/4", timestamp_ns=good.timestamp_ns)
    claimed = Announcement(by_rogue.msg_type, "/B/4", POD4.key_id, by_rogue.timestamp_ns,
                           by_rogue.nonce, by_rogue.signature)   # rogue signs, claims pod4
    assert v.check(claimed).reason == "bad_signature"


def test_an_announce_signature_is_no_withdrawal():
    v, _ = validator()
    a = ann(POD4, "/B/4")
    as_withdraw = Announcement(12, a.prefix, a.key_id, a.timestamp_ns, a.nonce, a.signature)
    assert v.check(as_withdraw).reason == "bad_signature"


def test_unknown_key_is_refused():
    v, _ = validator()
    stranger = Identity.generate()
    got = v.check(ann(stranger, "/B/4"))
    assert (got.state, got.reason) == (INVALID, "unknown_key")


@pytest.mark.parametrize("offset_s, ok", [(-29, True), (29, True), (-31, False), (31, False),
                                          (-3600, False)])
def test_freshness_window(offset_s, ok):
    v, _ = validator(window_s=30)
    got = v.check(ann(POD4, "/B/4", timestamp_ns=int((NOW + offset_s) * 1e9)))
    assert got.valid is ok and (ok or got.reason == "stale_timestamp")


def test_a_replay_is_refused_but_the_same_sg_retrying_gets_the_same_answer():
    v, clock = validator()
    a = ann(POD4, "/B/4")
    assert v.check(a, ("sg4", 1)).valid
    assert v.check(a, ("sg4", 1)).valid                     # sg4 asking again: idempotent
    replay = v.check(a, ("sg2", 1))                          # the same frame from elsewhere
    assert (replay.state, replay.reason) == (INVALID, "replay")
    clock[0] += 45                                           # later than the window: stale
    assert v.check(a, ("sg2", 1)).reason == "stale_timestamp"


def test_nonce_memory_is_bounded_by_the_window():
    v, clock = validator(window_s=10)
    for i in range(100):
        v.check(ann(POD4, "/B/4", timestamp_ns=int(clock[0] * 1e9)))
        clock[0] += 1
    assert len(v.nonces) <= 21                               # 2 windows of 1 s apart


def test_withdrawal_needs_a_good_signature_only():
    v, _ = validator()
    assert v.check(ann(POD4, "/Z/9", withdraw=True)).valid   # not covered, still withdrawable
    bad = ann(POD4, "/B/4", withdraw=True)
    bad = Announcement(bad.msg_type, bad.prefix, bad.key_id, bad.timestamp_ns, bad.nonce,
                       b"\x00" * 64)
    assert v.check(bad).reason == "bad_signature"


def test_revocation_turns_held_prefixes_invalid():
    v, _ = validator()
    held = [("/B/4", POD4.key_id), ("/A/1", POD1.key_id)]
    assert all(x.valid for x in v.revalidate(held))
    v.registry.revoke("/B")
    got = v.revalidate(held)
    assert (got[0].state, got[0].reason) == (NOT_FOUND, "not_covered") and got[1].valid


# -- the registry file -----------------------------------------------------------
def write(tmp_path, text):
    p = tmp_path / "registry.yaml"
    p.write_text(text)
    return p


GOOD = f"""keys:
  pod1: {{public: "{POD1.public_b64}"}}
  pod4: {{file: pod4.pub}}
authorizations:
  - {{prefix: /B, max_depth: 2, keys: [pod1, pod4]}}
"""


def test_registry_file_loads(tmp_path):
    (tmp_path / "pod4.pub").write_text(POD4.public_b64 + "\n")
    r = Registry.load(write(tmp_path, GOOD))
    assert set(r.keys) == {"pod1", "pod4"} and r.by_key_id[POD4.key_id] == "pod4"
    assert [(a.prefix, a.max_depth, a.keys) for a in r.authorizations] == \
        [("/B", 2, ["pod1", "pod4"])]
    again = Registry.load(write(tmp_path, r.dump()))          # dump() round-trips
    assert again.keys == r.keys


@pytest.mark.parametrize("text, message", [
    ("keys: [\n", r"registry.yaml:\d+: not YAML"),
    ("- a\n", r":1: a registry is a mapping"),
    ("keys: {}\nroas: []\n", r":1: unknown field\(s\) roas"),
    ("keys:\n  pod1: {public: 'not base64!'}\n", r":2: key pod1: not base64"),
    ("keys:\n  pod1: {public: 'AAAA'}\n", r":2: key pod1: an Ed25519 public key is 32 bytes"),
    ("keys:\n  pod1: {file: missing.pub}\n", r":2: key pod1: file missing.pub"),
    (f"keys:\n  pod1: {{public: '{POD1.public_b64}'}}\nauthorizations:\n"
     "  - {prefix: /B, max_depth: 2, keys: [pod9]}\n", r":4: prefix /B: unknown key\(s\) pod9"),
    (f"keys:\n  pod1: {{public: '{POD1.public_b64}'}}\nauthorizations:\n"
     "  - {prefix: /B/4, max_depth: 1, keys: [pod1]}\n", r":4: prefix /B/4: max_depth must be"),
    (f"keys:\n  pod1: {{public: '{POD1.public_b64}'}}\nauthorizations:\n"
     "  - {prefix: 'B', max_depth: 1, keys: [pod1]}\n", r":4: prefix 'B': .*must start with '/'"),
    (f"keys:\n  pod1: {{public: '{POD1.public_b64}'}}\nauthorizations:\n"
     "  - {prefix: /B}\n", r":4: authorization without 'keys'"),
    (f"keys:\n  pod1: {{public: '{POD1.public_b64}'}}\nauthorizations:\n"
     f"  - {{prefix: /B, keys: [pod1]}}\n  - {{prefix: /{crc32_twin('B')}, keys: [pod1]}}\n",
     r":5: prefix /x\w+: has the switch key of /B"),
    (f"keys:\n  pod1: {{public: '{POD1.public_b64}'}}\nauthorizations:\n"
     "  - {prefix: /a/b/c/d/e, keys: [pod1]}\n", r":4: prefix '/a/b/c/d/e': .*at most 4"),
    (f"keys:\n  pod1: {{public: '{POD1.public_b64}'}}\n  pod2: {{public: '{POD1.public_b64}'}}\n",
     r":3: key pod2: key pod2 is the same key as pod1"),
])
def test_registry_file_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(RegistryError, match=message):
        Registry.load(write(tmp_path, text))


# -- the service -----------------------------------------------------------------
@pytest.fixture
def spa():
    addr = f"127.0.0.1:{free_port()}"
    server, service = serve(registry(), addr)
    try:
        yield addr, service
    finally:
        server.stop(grace=None)


def test_service_answers_checks_and_counts(spa):
    addr, _ = spa
    with SpaClient([addr]) as c:
        assert c.check(POD4.announcement("/B/4"), "sg4", 1).valid
        v = c.check(ROGUE.announcement("/B/4"), "sg2", 1)
        assert (v.state, v.reason) == (INVALID, "key_not_authorized")
        view = c.show()
        assert view.counters["valid_ok"] == 1 and view.counters["invalid_key_not_authorized"] == 1


def test_service_refuses_malformed_requests_and_keeps_running(spa):
    addr, _ = spa
    from controller.proto import spa_pb2 as pb
    with SpaClient([addr]) as c:
        bad = [pb.CheckRequest(),                                       # no announcement
               pb.CheckRequest(announcement=pb.Announcement(msg_type=4, prefix="no-slash")),
               pb.CheckRequest(announcement=pb.Announcement(msg_type=4, prefix="/B", key_id=POD4.key_id,
                                                            signature=b"short"))]
        verdicts = [c._call("Check", r) for r in bad]
        assert [v.reason for v in verdicts] == ["bad_request", "bad_request", "bad_signature"]
        assert c.check(POD4.announcement("/B/4"), "sg4", 1).valid        # still serving
        assert c.show().counters["bad_request"] == 2


def test_runtime_authorize_add_key_and_revoke(spa):
    addr, _ = spa
    newcomer = Identity.generate()
    with SpaClient([addr]) as c:
        assert c.check(newcomer.announcement("/N/1"), "sg1", 1).reason == "unknown_key"
        c.add_key("newcomer", newcomer.public_raw)
        assert c.check(newcomer.announcement("/N/1"), "sg1", 1).state == NOT_FOUND
        c.authorize("/N", 2, ["newcomer"])
        assert c.check(newcomer.announcement("/N/1"), "sg1", 1).valid
        c.revoke("/N")
        assert c.revalidate("sg1", [("/N/1", newcomer.key_id)])[0].state == NOT_FOUND
        with pytest.raises(SpaError, match="no authorization for /N"):
            c.revoke("/N")
        with pytest.raises(SpaError, match="unknown key"):
            c.authorize("/M", 2, ["nobody"])


def test_client_fails_over_to_the_next_spa_and_says_when_none_answers(spa):
    addr, _ = spa
    dead = f"127.0.0.1:{free_port()}"
    with SpaClient([dead, addr], timeout=0.5) as c:
        assert c.check(POD4.announcement("/B/4"), "sg4", 1).valid
        assert c.addr == addr
    with SpaClient([dead], timeout=0.3) as c:
        with pytest.raises(SpaUnavailable, match="no SPA answers"):
            c.check(POD4.announcement("/B/4"), "sg4", 1)


def test_many_checks_in_flight_get_their_own_verdicts_in_order(spa):
    addr, _ = spa
    items = [(POD4.announcement(f"/B/{i}"), "sg4", 1) if i % 3 else
             (ROGUE.announcement(f"/B/{i}"), "sg2", 1) for i in range(30)]
    with SpaClient([addr]) as c:
        verdicts = c.check_many(items)
        assert [(v.state, v.reason) for v in verdicts] == [
            (VALID, "ok") if i % 3 else (INVALID, "key_not_authorized") for i in range(30)]
        assert c.show().counters["valid_ok"] == 20


def test_many_checks_with_no_spa_answering_cost_one_time_out_not_one_each(spa):
    addr, _ = spa
    dead = f"127.0.0.1:{free_port()}"
    items = [(POD4.announcement(f"/B/{i}"), "sg4", 1) for i in range(10)]
    with SpaClient([dead, addr], timeout=0.5) as c:     # the first is down: the next answers
        assert all(v.valid for v in c.check_many(items[:3])) and c.addr == addr
    import socket
    silent = socket.socket()                             # takes connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        with SpaClient([f"127.0.0.1:{silent.getsockname()[1]}"], timeout=0.3) as c:
            t0 = time.monotonic()
            out = c.check_many(items)
            took = time.monotonic() - t0
        assert all(isinstance(v, SpaUnavailable) for v in out)
        assert took < 0.3 * 5                            # not 10 time-outs in a row (3 s)
    finally:
        silent.close()


def test_one_batch_is_judged_in_order_as_separate_checks_and_a_huge_one_is_refused(spa):
    """CheckMany: one gRPC call for many announcements, each judged as Check would
    (a replay inside the batch is a replay), more than MAX_BATCH refused as a bad
    request for each; the client cuts longer lists into batches."""
    import grpc as _grpc
    from controller.proto import spa_pb2 as pb
    from controller.proto import spa_pb2_grpc as pb_grpc
    from controller.spa.spa_service import MAX_BATCH
    addr, _ = spa
    first = POD4.announcement("/B/4")
    items = [(first, "sg4", 1), (first, "sg2", 3)] + \
        [(POD4.announcement(f"/B/{i}"), "sg4", 1) for i in range(5, 5 + MAX_BATCH)]
    with SpaClient([addr]) as c:
        out = c.check_many(items)
        assert [(v.state, v.reason) for v in out[:2]] == [(VALID, "ok"), (INVALID, "replay")]
        assert len(out) == len(items) and all(v.valid for v in out[2:])
    req = SpaClient._check_request(POD4.announcement("/B/4"), "sg4", 1)
    with _grpc.insecure_channel(addr) as ch:
        reply = pb_grpc.SpaStub(ch).CheckMany(
            pb.CheckBatch(checks=[req] * (MAX_BATCH + 1)), timeout=5)
    assert len(reply.verdicts) == MAX_BATCH + 1
    assert {(v.state, v.reason) for v in reply.verdicts} == {(INVALID, "bad_request")}


# -- names you can trust: instance ownership and collision-free keys -------------

def owned_registry():
    """The shape registry_for makes, plus an operator's wider grant on /B."""
    r = Registry()
    for n, ident in (("pod1", POD1), ("pod4", POD4), ("rogue", ROGUE)):
        r.add_key(n, ident.public_raw)
    r.authorize("/B", 2, ["pod1", "pod4"])          # an operator's max_depth ...
    r.authorize("/B/1", None, ["pod1"])             # ... never reaches an owned instance
    r.authorize("/B/4", None, ["pod4"])
    return r


@pytest.mark.parametrize("who, prefix, reason", [
    (POD1, "/B/4", "owned_by_other"),     # another pod of the same service
    (POD4, "/B/1", "owned_by_other"),
    (POD4, "/B/4", "ok"),
    (POD1, "/B/1", "ok"),
    (POD1, "/B/9", "ok"),                 # no owner: the operator's max_depth decides
    (ROGUE, "/B/4", "key_not_authorized"),
    (POD4, "/B/4/x", "too_deep"),         # the owner's authorization is exact
])
def test_an_instance_belongs_to_its_own_key(who, prefix, reason):
    v = Validator(owned_registry(), clock=lambda: NOW)
    got = v.check(ann(who, prefix))
    assert got.reason == reason, got.text
    assert v.counters[f"{got.state}_{reason}"] == 1
    if reason == "owned_by_other":
        assert "belongs to key(s)" in got.text


def test_the_generated_registry_gives_each_instance_to_its_pod_only():
    from topologies.emu.spa_registry import registry_for
    from topologies.topo import Topology
    topo = Topology.load(ROOT / "topologies" / "fig2.yaml")
    keys = {p: Identity.generate() for p in topo.pods()}
    reg = registry_for(topo, {p: k.public_raw for p, k in keys.items()})
    got = {a.prefix: (a.max_depth, sorted(a.keys)) for a in reg.authorizations}
    assert got["/B"] == (1, ["pod1", "pod4"]) and got["/B/4"] == (2, ["pod4"])
    v = Validator(reg, clock=lambda: NOW)
    assert v.check(ann(keys["pod4"], "/B/4")).valid
    assert v.check(ann(keys["pod1"], "/B/4")).reason == "owned_by_other"
    assert v.check(ann(keys["pod2"], "/B/4")).reason == "key_not_authorized"
    assert v.check(ann(keys["pod1"], "/B/9")).reason == "too_deep"     # nothing handed out


def test_an_authorization_whose_key_collides_is_refused():
    r = owned_registry()
    twin = crc32_twin("B")
    with pytest.raises(RegistryError, match=r"switch key of /B\b"):
        r.authorize(f"/{twin}", 2, ["rogue"])
    assert not r.covering(f"/{twin}/4")
    r.revoke("/B")                  # /B/1 and /B/4 still hold the first component's key
    with pytest.raises(RegistryError, match="switch key of /B"):
        r.authorize(f"/{twin}", 2, ["rogue"])


def test_an_announcement_whose_key_collides_is_refused():
    """A key allowed everywhere (a root grant) still cannot announce a name with
    the key of an authorized name, or of one announced before it."""
    r = owned_registry()
    r.authorize("/", 4, ["rogue"])
    v = Validator(r, clock=lambda: NOW)
    got = v.check(ann(ROGUE, f"/{crc32_twin('B')}/4"))
    assert (got.state, got.reason) == (INVALID, "key_collision"), got.text
    assert v.check(ann(ROGUE, "/lab/x")).valid                       # announced, not authorized
    got = v.check(ann(ROGUE, f"/lab/{crc32_twin('x')}"))
    assert got.reason == "key_collision" and "/lab/x" in got.text
    with pytest.raises(RegistryError, match="announced name"):
        v.authorize_prefix(f"/lab/{crc32_twin('x', 'y')}", None, ["pod1"])
    assert v.counters["invalid_key_collision"] == 2


def test_an_announced_name_releases_its_key_when_withdrawn_or_gone_quiet():
    r = owned_registry()
    r.authorize("/", 4, ["rogue"])
    clock = [NOW]
    v = Validator(r, clock=lambda: clock[0])
    twin = f"/lab/{crc32_twin('x')}"
    assert v.check(ann(ROGUE, "/lab/x")).valid
    assert v.check(ann(ROGUE, twin)).reason == "key_collision"
    assert v.check(ROGUE.announcement("/lab/x", withdraw=True, timestamp_ns=int(NOW * 1e9))).valid
    assert v.check(ann(ROGUE, twin)).valid                             # released by the withdrawal
    clock[0] += 61                                                     # two windows, no renewal
    assert v.check(ann(ROGUE, "/lab/x", timestamp_ns=int(clock[0] * 1e9))).valid


def test_a_name_deeper_than_the_key_is_refused():
    r = owned_registry()
    r.authorize("/", 4, ["rogue"])
    got = Validator(r, clock=lambda: NOW).check(ann(ROGUE, "/a/b/c/d/e"))
    assert (got.state, got.reason) == (INVALID, "bad_prefix") and "at most 4" in got.text
