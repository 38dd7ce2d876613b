"""The agent's switch-facing logic against the fake P4Runtime server: what it
writes on start, and how it treats a FIB it finds after a restart."""
from __future__ import annotations

import time

import pytest

from controller.switch import p4names as N
from traffic.wire import defs
from controller.agent.router_agent import Agent
from controller.switch.tables import Fib
from controller.routing.route import PUNT, Route
from topologies.topo import NextHop
from controller.routing.router import Config
from tests.conftest import P4INFO, ROOT
from tests.support.fake_p4rt import FakeServer
from topologies.topo import Topology
from traffic.wire import names

pytestmark = pytest.mark.skipif(not P4INFO.exists(), reason="needs p4src/build/dmsc.p4info.txtpb")
FIG2 = Topology.load(ROOT / "topologies" / "fig2.yaml")


def make_agent(addr, grace_s=3.0):
    return Agent(FIG2, "sg1", addr, 1, b"k", Config(), grace_s=grace_s)


def test_fresh_switch_gets_pipeline_and_base_tables():
    with FakeServer() as (fake, addr):
        agent = make_agent(addr)
        agent.connect(deadline_s=5)
        try:
            assert fake.config is not None                       # pipeline pushed
            roles = {}
            for te in agent.sw.read_table(N.TABLE_PORT_ROLE):
                d = agent.sw.decode_entry(te)
                roles[d["match"][N.MATCH_PORT_ROLE_PORT]] = d["action"][1][N.PARAM_SET_ROLE_ROLE]
            assert roles == {1: defs.ROLE_POD, 2: defs.ROLE_CORE, 3: defs.ROLE_CORE}
            assert len(agent.sw.read_table(N.TABLE_PORT_MAC)) == 3
            assert agent.fib.deletes_allowed                       # nothing to protect
        finally:
            agent.sw.close()


def test_restarted_agent_keeps_unknown_entries_until_it_may_delete():
    with FakeServer() as (fake, addr):
        first = make_agent(addr)
        first.connect(deadline_s=5)
        Fib(first.sw).sync({"/old": Route.via([NextHop(2, "02:00:00:00:0b:03")])})
        first.sw.close()
        agent = make_agent(addr, grace_s=60)
        agent.connect(deadline_s=5)                # existing pipeline: not pushed again
        try:
            assert not agent.fib.deletes_allowed
            assert agent.router.overload          # a restart: no transit through it yet
            now = time.monotonic()                # the agent's clock (connect used it)
            agent.router.accept_prefix("/A/1", 1, "02:00:01:00:00:01", now)
            agent.router.tick(now + 1.0)
            agent.fib.write()
            own = names.prefix_key(names.switch_name("sg1"))      # its name: to its agent
            keys = set(Fib(agent.sw).read())
            assert keys == {names.prefix_key("/old"), names.prefix_key("/A/1"), own}
            agent.fib.deletes_allowed = True
            agent.fib.write()
            fib = Fib(agent.sw).read()
            assert set(fib) == {names.prefix_key("/A/1"), own}
            assert fib[own] == Route(special=PUNT)
        finally:
            agent.sw.close()


class RecordingSwitch:
    """Stands in for the agent's switch session: records packet-outs."""

    def __init__(self):
        self.out = []

    def packet_out(self, frame, egress_port=0, flags=0):
        self.out.append((frame, flags))


def _request_bytes(dst="/nowhere/x", src="/A/1", msg_id=7):
    from traffic.wire import layers
    return bytes(layers.request(dst, src, "echo", {}, msg_id=msg_id))


def test_no_route_answer_is_an_error_routed_back_by_name():
    from traffic.wire import codec
    agent = make_agent("127.0.0.1:1")
    agent.sw = RecordingSwitch()
    agent.answer_no_route(_request_bytes())
    (frame, flags), = agent.sw.out
    f = codec.decode(frame)
    assert f.type == defs.TYPE_ERROR and f.msg_id == 7 and f.dst_name == "/A/1"
    assert f.src_name == names.switch_name("sg1") and flags == defs.PKTOUT_ROUTE
    code = int.from_bytes(f.tlv(codec.TLV_STATUS)[:2], "big")
    assert code == codec.STATUS_NO_ROUTE and agent.counters["no_route_answered"] == 1


def test_no_route_answers_are_rate_limited_and_the_rest_counted():
    agent = make_agent("127.0.0.1:1")
    agent.sw = RecordingSwitch()
    now = [0.0]
    from controller.agent.no_route_replies import NO_ROUTE_PER_S, TokenBucket
    agent.no_route.limit = TokenBucket(NO_ROUTE_PER_S, burst=NO_ROUTE_PER_S, clock=lambda: now[0])
    for i in range(200):                       # a burst at one instant
        agent.answer_no_route(_request_bytes(msg_id=i))
    assert len(agent.sw.out) == NO_ROUTE_PER_S
    assert agent.counters["no_route_rate_limited"] == 200 - NO_ROUTE_PER_S
    now[0] += 0.1                              # a tenth of a second refills 5 tokens
    for i in range(20):
        agent.answer_no_route(_request_bytes(msg_id=1000 + i))
    assert len(agent.sw.out) == NO_ROUTE_PER_S + 5


def test_errors_and_garbage_are_never_answered():
    from traffic.wire import layers
    agent = make_agent("127.0.0.1:1")
    agent.sw = RecordingSwitch()
    req = layers.parse(_request_bytes())
    agent.answer_no_route(bytes(layers.error(req, "/B/4", 1, "x")))   # no error storms
    agent.answer_no_route(b"\x00" * 20)
    assert agent.sw.out == []
    assert agent.counters["no_route_not_answered"] == 1
    assert agent.counters["no_route_malformed"] == 1


def test_unreadable_carrier_is_unknown_not_down(monkeypatch):
    """A carrier file that cannot be read must not bring adjacencies down:
    it is counted and logged, and the hellos decide."""
    agent = make_agent("127.0.0.1:1")
    calls = []
    monkeypatch.setattr(agent.router, "on_port_status", lambda *a: calls.append(a))
    agent.carrier.intfs = {p: f"no-such-intf-{p}" for p in agent.carrier.intfs}
    agent.carrier.poll(agent.router, 1.0)
    assert calls == []
    assert agent.counters["carrier_unreadable"] == len(agent.carrier.intfs)


def test_an_unexpected_error_in_the_fib_writer_is_counted_and_it_goes_on(caplog):
    """Before: an unexpected exception ended the FIB writer thread while hellos
    went on (a switch that looked alive and never updated)."""
    import threading
    with FakeServer() as (fake, addr):
        agent = make_agent(addr)
        agent.connect(deadline_s=5)
        real, calls = agent.fib.write, []

        def flaky():
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("injected")
            real()
        agent.fib.write = flaky
        writer = threading.Thread(target=agent.fib.loop, daemon=True)
        writer.start()
        try:
            now = time.monotonic()
            agent.router.accept_prefix("/A/1", 1, "02:00:01:00:00:01", now)
            agent.router.tick(now + 1.0)
            agent.fib.event.set()
            deadline = time.monotonic() + 5
            while names.prefix_key("/A/1") not in Fib(agent.sw).read():
                assert time.monotonic() < deadline, "the FIB writer never wrote after the error"
                agent.fib.event.set()
                time.sleep(0.05)
            assert agent.counters["fib_writer_errors"] == 1
            assert "injected" in caplog.text and writer.is_alive()
        finally:
            agent.stop_event.set()
            writer.join(5)
            agent.sw.close()


def test_the_scsc_policy_channel_is_apart_from_the_operator_admin_service(tmp_path):
    """The SCSC's policy channel (LSDB out, signed policy sets in) listens on an
    address of its own: the operator's admin service takes no policy set, the
    policy channel no operator call, and a set pushed there is checked with the
    policy key."""
    import shutil
    from controller import keys
    from controller.agent import agent_command
    from controller.agent.admin_client import AdminClient, AdminError
    from controller.keys import sign
    from controller.policy_channel import PolicyClient, PolicyError
    from controller.proto import scsc_pb2
    from controller.rpc import private_socket_dir, unix_addr
    key_file = tmp_path / "domain.key"
    key_file.write_bytes(b"k" * 32)
    sock_dir = private_socket_dir()
    admin, policy = unix_addr(sock_dir, "agent-sg1"), unix_addr(sock_dir, "policy-sg1")
    a = agent_command.parser().parse_args([
        "--topo", str(ROOT / "topologies" / "fig2.yaml"), "--switch", "sg1",
        "--grpc-addr", "127.0.0.1:1", "--device-id", "1", "--admin-addr", admin,
        "--policy-addr", policy, "--key-file", str(key_file)])
    agent, servers = agent_command.build(a)
    pkey = keys.derive(key_file.read_bytes(), keys.POLICY)

    def policy_set(key, switch="sg1"):
        return sign(scsc_pb2.PolicySet(switch=switch, version=int(time.time() * 1000),
                                       lifetime_s=1.0, sent_at=time.time()), key)
    try:
        with agent.lock:
            agent.router.tick(time.monotonic())           # its own LSA into its LSDB
        with PolicyClient(policy) as c:
            assert {lsa.origin for lsa in c.lsdb()} == {"sg1"}
            assert c.set_policies(policy_set(b"not it")).error.startswith("bad_auth")
            assert c.set_policies(policy_set(keys.derive(b"k" * 32, keys.TELEMETRY))) \
                .error.startswith("bad_auth")
            assert c.set_policies(policy_set(pkey, "sg2")).error.startswith("wrong_switch")
        assert agent.counters["policy_refused_bad_auth"] == 2
        with AdminClient(admin) as c:
            assert c.state().router == "sg1"
        with PolicyClient(admin) as c, pytest.raises(PolicyError, match="UNIMPLEMENTED"):
            c.set_policies(policy_set(pkey))
        with AdminClient(policy) as c, pytest.raises(AdminError, match="UNIMPLEMENTED"):
            c.state()
    finally:
        servers.stop(None)
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_the_protocol_loops_lateness_is_counted_and_exported():
    """Each tick is counted against the deadline the loop slept for; a loop
    kept from running (here: its lock held for 150 ms, as a host short of CPU
    would) shows as ticks late by tens of ms, in the state's counters."""
    import threading
    from controller.agent.state_export import agent_state
    from controller.agent.tick_lateness import PREFIX
    from traffic.wire.lateness import Histogram
    with FakeServer() as (_fake, addr):
        agent = make_agent(addr)
        loop = threading.Thread(target=agent.run, daemon=True)
        loop.start()
        try:
            deadline = time.monotonic() + 10
            while agent.ticks.hist.total < 5:              # ticks on schedule: counted
                assert time.monotonic() < deadline, "no tick counted"
                time.sleep(0.02)
            late_before = sum(agent.ticks.hist.counts[4:])     # late by more than 20 ms
            with agent.lock:
                time.sleep(0.15)                           # the loop cannot run meanwhile
            while sum(agent.ticks.hist.counts[4:]) == late_before:
                assert time.monotonic() < deadline, "the held-up tick was not counted"
                time.sleep(0.02)
            full = agent_state(agent)
            small = agent_state(agent, counters_only=True)     # what samplers poll
            assert full.neighbors or full.lsdb or full.rib       # the full state has them
            assert not (small.neighbors or small.lsdb or small.rib or small.held)
            assert small.router == full.router == "sg1" and small.fib_version == full.fib_version
            counters = dict(small.counters)
            assert set(counters) >= set(full.counters) - {k for k in full.counters
                                                            if k.startswith(PREFIX)}
            h = Histogram.from_dict(counters, PREFIX)
            assert h.total >= 6 and sum(h.counts[4:]) >= 1      # late by more than 20 ms
            assert h.quantile_ms(1.0) <= 200
        finally:
            agent.stop_event.set()
            loop.join(10)
            if agent.sw is not None:
                agent.sw.close()
