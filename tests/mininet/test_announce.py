"""Figure 2 with the SPA, the agents and pods that announce: DMSC's type-1 and
type-3 signaling and calls by name, end to end on BMv2 in Mininet.

The only way a prefix enters an LSA here is pod -> SG -> SPA (valid). Each
test leaves the network as it found it (every pod's prefixes accepted, every
FIB equal to SPF over the topology file).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from controller.switch.tables import Fib
from dmsc.converge import expected_fibs, wait_converged
from tests.conftest import ROOT
from tests.support.wait import poll
from topologies.emu.child_processes import py_env
from topologies.expected import served_prefixes
from traffic.wire import names

pytestmark = pytest.mark.mininet


def announce(net, pod, *args, timeout=3.0):
    """traffic.send_announcement in a pod's namespace: the SG's answer as a dict."""
    t = net.topo
    res = net.run_in(pod, ["-m", "traffic.send_announcement", "--iface", t.intf_name(pod, 0),
                           "--mac", t.mac(pod, 0), "--timeout", str(timeout), *args],
                     timeout=timeout + 20)
    return json.loads(res.stdout.strip() or json.dumps({"error": res.stderr[-400:]}))


def counters(net, sg):
    with net.admin(sg) as c:
        return dict(c.state().counters)


def all_fibs(reader, topo):
    return {s: reader.read(s) for s in topo.switches()}


def load(net, pod, src, dst, count, interval=0.01, timeout=0.3):
    t = net.topo
    return net.host(pod).popen(
        [sys.executable, "-m", "traffic.rmi_client", "--iface", t.intf_name(pod, 0), "--src", src,
         "--mac", t.mac(pod, 0), "--timeout", str(timeout), "--count", str(count),
         "--interval", str(interval), dst, "echo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())


def test_every_announcement_passes_the_spa_and_reaches_every_fib(net, reader):
    topo = net.topo
    for pod in topo.pods():
        st = net.announcements(pod)
        assert set(st) == {p for p, pods in served_prefixes(topo).items() if pod in pods}
        assert all(v["state"] == "accepted" for v in st.values()), st
    with net.admin("sg4") as c:
        held = {h.prefix: h for h in c.state().held}
    assert set(held) == {"/A", "/A/4", "/B", "/B/4"}
    assert held["/B/4"].key_id == net.identities["pod4"].key_id
    with net.spa() as spa:
        assert spa.show().counters["valid_ok"] >= len(served_prefixes(topo)) + 1
    for s in topo.switches():
        assert reader.read(s) == expected_fibs(topo)[s], s


def test_calls_by_service_name_and_by_instance_name_follow_the_spf_path(net, reader):
    before = {s: Fib(c).counters() for s, c in reader.conns.items()}
    out = net.call("pod1", "/A/1", "/B/4", "whoami")
    assert out["result"] == {"instance": "/B/4"} and out["from"] == "/B/4", out
    assert out["hops"] == 3                                   # sg4, sr3, sg1 on the way back
    counted = {s for s, c in reader.conns.items()
               if Fib(c).counters().get(names.prefix_key("/B/4"), (0, 0))[0]
               > before[s].get(names.prefix_key("/B/4"), (0, 0))[0]}
    assert counted == {"sg1", "sr3", "sg4"}                   # the SPF path, no other switch
    anycast = net.call("pod1", "/A/1", "/B", "whoami")
    assert anycast["from"] == "/B/1", anycast                 # the nearest: pod1's own replica
    far = net.call("pod3", "/D/3", "/B", "whoami")
    assert far["from"] in ("/B/1", "/B/4"), far               # sg3 is 2 hops from sg1 and sg4


def test_unknown_name_is_a_fast_no_route_error(net):
    out = net.call("pod1", "/A/1", "/nobody/1", deadline_s=0, timeout=2.0)
    # an error from the first SG, not a time-out
    assert out["error"].startswith(f"no_route from {names.switch_name('sg1')}"), out


def test_hijacks_are_invalid_and_divert_nothing(net, reader, tmp_path):
    topo = net.topo
    before = all_fibs(reader, topo)
    c2 = counters(net, "sg2")
    calls = load(net, "pod3", "/D/3", "/B/4", count=150)
    key2 = str(net.key_files["pod2"])
    attacks = [announce(net, "pod2", "--key", key2, "--prefix", "/B/4"),     # an instance it does not own
               announce(net, "pod2", "--key", key2, "--prefix", "/B"),       # the whole service
               announce(net, "pod2", "--key", key2, "--prefix", "/C/2/x/y")]  # deeper than allowed
    out, _ = calls.communicate(timeout=60)
    result = json.loads(out)
    assert [(a["answer"], a["body"].get("reason")) for a in attacks] == [
        ("nack", "key_not_authorized"), ("nack", "key_not_authorized"), ("nack", "too_deep")]
    assert attacks[0]["body"]["state"] == "invalid"
    after = counters(net, "sg2")
    assert after.get("announce_refused_key_not_authorized", 0) \
        - c2.get("announce_refused_key_not_authorized", 0) == 2
    assert after.get("announce_refused_too_deep", 0) - c2.get("announce_refused_too_deep", 0) == 1
    assert all_fibs(reader, topo) == before                   # no FIB anywhere changed
    assert result["sent"] == 150 and result["ok"] == 150, result
    assert result["responders"] == {"/B/4": 150}              # 0 calls diverted


@pytest.mark.parametrize("how, reason", [
    (["--bad-signature"], "bad_signature"),
    (["--timestamp-offset", "-3600"], "stale_timestamp"),
])
def test_forged_and_stale_announcements_are_refused_and_counted(net, how, reason):
    c = counters(net, "sg4")
    got = announce(net, "pod4", "--key", str(net.key_files["pod4"]), "--prefix", "/B/7", *how)
    assert (got["answer"], got["body"]["reason"]) == ("nack", reason), got
    assert counters(net, "sg4")[f"announce_refused_{reason}"] == \
        c.get(f"announce_refused_{reason}", 0) + 1
    assert net.agents["sg4"].alive()


def test_unknown_key_and_replay_are_refused(net, tmp_path, reader):
    from traffic.identity import Identity
    stranger = Identity.generate().save(tmp_path / "stranger.pem")
    got = announce(net, "pod3", "--key", str(stranger), "--prefix", "/D/9")
    assert (got["answer"], got["body"]["reason"]) == ("nack", "unknown_key"), got
    saved = tmp_path / "frame.bin"
    first = announce(net, "pod3", "--key", str(net.key_files["pod3"]), "--prefix", "/D/3",
                     "--save", str(saved))                    # a renewal of its own instance
    assert first["answer"] == "ack", first
    again = announce(net, "pod1", "--send-raw", str(saved))   # the same bytes from another pod
    assert (again["answer"], again["body"]["reason"]) == ("nack", "replay"), again
    wait_converged(reader, expected_fibs(net.topo), timeout=10)


def test_spa_down_fails_closed_and_existing_services_keep_working(net, reader):
    topo = net.topo
    key1 = str(net.key_files["pod1"])
    calls = load(net, "pod2", "/C/2", "/B/4", count=500)       # 5 s of calls throughout
    net.authorize("/A/9", ["pod1"])                            # a new instance, granted
    sgs = sorted({topo.gateway(p) for p in topo.pods()})
    held = {}
    for sg in sgs:
        with net.admin(sg) as c:
            held[sg] = len(c.state().held)
    net.stop_spa()
    try:
        renewed0 = {sg: counters(net, sg).get("announce_renewed_without_spa", 0) for sg in sgs}
        pending0 = counters(net, "sg1").get("announce_pending", 0)
        got = announce(net, "pod1", "--key", key1, "--prefix", "/A/9", timeout=1.5)
        assert got["answer"] == "none", got                   # waits: no ack, no nack
        assert counters(net, "sg1").get("announce_pending", 0) > pending0

        def renewed():                                        # every SG renewed what it
            now = {sg: counters(net, sg).get("announce_renewed_without_spa", 0) for sg in sgs}
            return all(now[sg] - renewed0[sg] >= held[sg] for sg in sgs)   # holds, once
        poll(renewed, net.lease_s, "every held prefix renewed with no SPA answering")
        assert names.prefix_key("/A/9") not in reader.read("sg1")
        for sg in sgs:                                        # nothing held was dropped
            with net.admin(sg) as c:
                assert len(c.state().held) == held[sg], sg
        for pod in topo.pods():
            assert all(v["state"] == "accepted" for v in net.announcements(pod).values())
    finally:
        net.restart_spa()
    want = expected_fibs(topo, prefixes={**served_prefixes(topo), "/A/9": {"pod1"}})
    wait_converged(reader, want, timeout=10)                  # accepted once the SPA is back
    out, _ = calls.communicate(timeout=60)
    result = json.loads(out)
    assert result["sent"] == 500 and result["failed"] == 0, result
    with net.admin("sg1") as c:
        c.withdraw_prefix("/A/9")
    wait_converged(reader, expected_fibs(topo), timeout=10)


def test_revocation_withdraws_the_prefix_from_every_fib(net, reader):
    topo = net.topo
    revoked0 = counters(net, "sg2").get("withdrawn_revoked", 0)
    with net.spa() as spa:
        spa.revoke("/C/2")                  # each name has its own authorization now
        spa.revoke("/C")
        try:
            without_c = {p: pods for p, pods in served_prefixes(topo).items()
                         if not p.startswith("/C")}
            wait_converged(reader, expected_fibs(topo, prefixes=without_c), timeout=10)
            out = net.call("pod1", "/A/1", "/C/2", deadline_s=0)
            assert out["error"].startswith("no_route"), out
            assert counters(net, "sg2")["withdrawn_revoked"] - revoked0 == 2   # /C and /C/2
            poll(lambda: net.announcements("pod2")["/C/2"]["state"] == "refused", 5,
                 "pod2 told /C/2 is refused")
        finally:
            spa.authorize("/C", None, ["pod2"])
            spa.authorize("/C/2", None, ["pod2"])
    net.wait_announced(["pod2"], timeout=15)                  # pod2 asks again, accepted
    wait_converged(reader, expected_fibs(topo), timeout=10)


def test_a_killed_pod_is_withdrawn_within_its_lease_and_the_replica_takes_over(net, reader):
    topo = net.topo
    expired0 = counters(net, "sg4").get("lease_expired", 0)
    net.pods["pod4"].kill()
    try:
        without_4 = {p: pods - {"pod4"} for p, pods in served_prefixes(topo).items()
                     if pods - {"pod4"}}
        wait_converged(reader, expected_fibs(topo, prefixes=without_4),
                       timeout=net.lease_s + 5)
        assert counters(net, "sg4")["lease_expired"] - expired0 == 4   # /A, /A/4, /B, /B/4
        out = net.call("pod3", "/D/3", "/B", "whoami")
        assert out["from"] == "/B/1", out                     # the replica elsewhere
    finally:
        net.stop_pod("pod4")
        net.start_pod("pod4")
    net.wait_announced(["pod4"], timeout=15)
    wait_converged(reader, expected_fibs(topo), timeout=10)


def test_a_pod_that_leaves_withdraws_at_once(net, reader):
    topo = net.topo
    c0 = counters(net, "sg3")
    net.stop_pod("pod3")                                       # SIGTERM: signed withdrawals
    try:
        poll(lambda: counters(net, "sg3").get("withdraw_accepted", 0)
             - c0.get("withdraw_accepted", 0) >= 2, 3, "sg3 accepting pod3's withdrawals")
        without_3 = {p: pods for p, pods in served_prefixes(topo).items() if "pod3" not in pods}
        # well within the lease (6 s): the withdrawal, not the expiry, removed them
        wait_converged(reader, expected_fibs(topo, prefixes=without_3), timeout=3)
        c1 = counters(net, "sg3")
        assert c1["withdraw_accepted"] - c0.get("withdraw_accepted", 0) == 2   # /D and /D/3
        assert c1.get("lease_expired", 0) == c0.get("lease_expired", 0)
    finally:
        net.start_pod("pod3")
    net.wait_announced(["pod3"], timeout=15)
    wait_converged(reader, expected_fibs(topo), timeout=10)
