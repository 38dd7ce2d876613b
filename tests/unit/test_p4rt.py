"""The P4Runtime adapter against an in-process fake server: what goes on the wire."""
from __future__ import annotations

import pytest
from google.rpc import code_pb2
from controller.switch.p4runtime.p4.v1 import p4runtime_pb2

from controller.switch import p4names as N
from traffic.wire import defs
from controller.switch.tables import Fib
from controller.routing.route import DROP, Route
from topologies.topo import NextHop
from controller.switch.p4rt import (INSERT, NotPrimaryError, P4Type, SwitchConnection,
                                    SwitchConnectionError, UnknownP4Name, WriteError)
from tests.conftest import BMV2_JSON, P4INFO
from tests.support.fake_p4rt import FakeServer
from topologies.emu.child_processes import free_port
from traffic.wire import names

pytestmark = pytest.mark.skipif(not P4INFO.exists(), reason="needs p4src/build/dmsc.p4info.txtpb")


@pytest.fixture
def fake():
    with FakeServer() as (fake, addr):
        sw = SwitchConnection("fake", addr, device_id=3).connect()
        sw.set_pipeline(str(P4INFO), str(BMV2_JSON))
        yield fake, sw
        sw.close()


def ids(sw):
    return lambda kind, name: sw.ctx.get_obj_id(getattr(P4Type, kind), name)


def test_pipeline_push_sends_p4info_and_bmv2_json(fake):
    server, sw = fake
    assert server.config.p4_device_config == BMV2_JSON.read_bytes()
    assert {t.preamble.name for t in server.config.p4info.tables} >= {N.TABLE_FIB, N.TABLE_POLICY}


def test_table_entry_is_built_by_name_with_canonical_bytes(fake):
    _, sw = fake
    key, plen = names.prefix_key("/shop")
    te = sw.table_entry(N.TABLE_FIB, {N.MATCH_FIB_DST_KEY: (key, plen)},
                        action_set=[(N.ACTION_SET_NEXT_HOP, {"port": 2, "dmac": 0x0200000000AA}, 1)])
    i = ids(sw)
    expected = p4runtime_pb2.TableEntry(table_id=i("table", N.TABLE_FIB))
    m = expected.match.add(field_id=1)
    m.lpm.value = key.to_bytes(16, "big").lstrip(b"\0")
    m.lpm.prefix_len = 32
    pa = expected.action.action_profile_action_set.action_profile_actions.add(weight=1)
    pa.action.action_id = i("action", N.ACTION_SET_NEXT_HOP)
    pa.action.params.add(param_id=1, value=b"\x02")
    pa.action.params.add(param_id=2, value=bytes.fromhex("0200000000aa"))
    assert te == expected


def test_one_batch_is_one_write_rpc(fake):
    server, sw = fake
    f = Fib(sw)
    f.sync({f"/s{i}": Route.via([NextHop(2, "02:00:00:00:00:02")]) for i in range(50)})
    assert len(server.write_requests) == 1                    # one Write RPC ...
    assert len(server.write_requests[0].updates) == 50        # ... with every update
    assert server.write_requests[-1].election_id.low == 1


def test_sync_diffs_against_what_the_switch_holds(fake):
    server, sw = fake
    f = Fib(sw)
    a, b = NextHop(2, "02:00:00:00:00:02"), NextHop(3, "02:00:00:00:00:03")
    f.sync({"/A": Route.via([a]), "/B": Route.via([a]), "/C": Route.via([a])})
    counts = f.sync({"/A": Route.via([a]), "/B": Route.via([a, b]), "/D": Route(special=DROP)})
    assert counts == {"insert": 1, "modify": 1, "delete": 1}
    assert f.read() == {names.prefix_key("/A"): Route.via([a]),
                        names.prefix_key("/B"): Route.via([a, b]),
                        names.prefix_key("/D"): Route(special=DROP)}
    n = len(server.write_requests)
    assert f.sync({"/A": Route.via([a]), "/B": Route.via([a, b]), "/D": Route(special=DROP)}) \
        == {"insert": 0, "modify": 0, "delete": 0}
    assert len(server.write_requests) == n            # nothing changed: no Write at all


def test_write_error_names_each_failed_update(fake):
    server, sw = fake
    server.fail_next = {1: (code_pb2.RESOURCE_EXHAUSTED, "table full")}
    ents = [sw.table_entry(N.TABLE_PORT_ROLE, {N.MATCH_PORT_ROLE_PORT: p},
                           action=N.ACTION_SET_ROLE, params={"role": 2}) for p in (1, 2, 3)]
    with pytest.raises(WriteError) as err:
        sw.insert(ents)
    assert [(f.index, f.op, f.code, f.message) for f in err.value.failures] == \
        [(1, "INSERT", "RESOURCE_EXHAUSTED", "table full")]
    assert "port_role[0x2]" in str(err.value) and "1 of 3 updates failed" in str(err.value)
    with pytest.raises(WriteError, match="ALREADY_EXISTS"):
        sw.insert(ents[:1])                              # the others were applied


def test_unknown_names_are_refused_before_anything_is_sent(fake):
    server, sw = fake
    n = len(server.write_requests)
    with pytest.raises(UnknownP4Name, match="no table named 'nope'"):
        sw.table_entry("nope")
    with pytest.raises(UnknownP4Name, match="no match field"):
        sw.table_entry(N.TABLE_FIB, {"ip": 1})
    with pytest.raises(UnknownP4Name, match="needs parameter 'dmac'"):
        sw.table_entry(N.TABLE_FIB, action_set=[(N.ACTION_SET_NEXT_HOP, {"port": 1}, 1)])
    with pytest.raises(ValueError, match="does not fit"):
        sw.table_entry(N.TABLE_PORT_ROLE, {N.MATCH_PORT_ROLE_PORT: 1 << 9})
    assert len(server.write_requests) == n


def test_counter_reads(fake):
    server, sw = fake
    e = p4runtime_pb2.Entity()
    e.counter_entry.counter_id = ids(sw)("counter", N.COUNTER_DROP_REASONS)
    e.counter_entry.index.index = defs.DROP_HOP_LIMIT
    e.counter_entry.data.packet_count = 7
    server.counters.append(e)
    assert sw.read_counter(N.COUNTER_DROP_REASONS) == {defs.DROP_HOP_LIMIT: (7, 0)}


def test_packet_out_and_packet_in_carry_named_metadata(fake):
    server, sw = fake
    sw.packet_out(b"frame", egress_port=3)
    po = server.packet_outs.get(timeout=2)
    assert po.payload == b"frame"
    assert [(m.metadata_id, m.value) for m in po.metadata] == [(1, b"\x03"), (2, b"\x00")]
    server.send_packet_in(b"punted", {1: b"\x02", 2: b"\x04"})
    pin = sw.packet_in(timeout=2)
    assert pin.payload == b"punted"
    assert pin.metadata == {N.PACKET_IN_INGRESS_PORT: 2, N.PACKET_IN_REASON: 4}
    with pytest.raises(UnknownP4Name):
        sw.packet_out(b"x", nope=1)


def test_wake_ends_a_packet_in_wait_from_another_thread(fake):
    import threading
    _server, sw = fake
    got = []
    t = threading.Thread(target=lambda: got.append(sw.packet_in(timeout=30)))
    t.start()
    sw.wake()
    t.join(10)
    assert not t.is_alive() and got == [None]


def test_no_server_is_a_connection_error_not_an_exit():
    with pytest.raises(SwitchConnectionError, match="no P4Runtime server"):
        SwitchConnection("ghost", f"127.0.0.1:{free_port()}", 1).connect(timeout=0.5)


def test_lower_election_id_is_not_primary():
    with FakeServer() as (_, addr):
        first = SwitchConnection("s", addr, 1, election_id=(0, 5)).connect()
        try:
            with pytest.raises(NotPrimaryError):
                SwitchConnection("s", addr, 1, election_id=(0, 2)).connect()
        finally:
            first.close()


def test_use_before_connect_is_a_clear_error():
    with pytest.raises(SwitchConnectionError, match="not connected"):
        SwitchConnection("s", "127.0.0.1:1", 1).write([(INSERT, p4runtime_pb2.Entity())])


def test_fetch_p4info_reads_the_pipeline_the_switch_runs():
    with FakeServer() as (_, addr):
        with SwitchConnection("s", addr, 1, election_id=(0, 100)).connect() as pusher:
            pusher.set_pipeline(str(P4INFO), str(BMV2_JSON))
            with SwitchConnection("s", addr, 1, election_id=(0, 7)).connect(
                    require_primary=False) as reader:
                reader.fetch_p4info()                       # no file: from the switch
                assert reader.ctx.get_obj_id(P4Type.table, N.TABLE_FIB) == \
                    pusher.ctx.get_obj_id(P4Type.table, N.TABLE_FIB)
                assert reader.table_entry(N.TABLE_PORT_ROLE, {N.MATCH_PORT_ROLE_PORT: 1}) == \
                    pusher.table_entry(N.TABLE_PORT_ROLE, {N.MATCH_PORT_ROLE_PORT: 1})


def test_fetch_p4info_without_a_pipeline_is_a_pipeline_error():
    from controller.switch.p4rt import PipelineError
    with FakeServer() as (_, addr):
        with SwitchConnection("s", addr, 1).connect() as sw:
            with pytest.raises(PipelineError, match="no pipeline on the switch.*FAILED_PRECONDITION"):
                sw.fetch_p4info()


def test_a_stream_the_switch_closes_is_a_connection_error_on_packet_in():
    server = FakeServer()
    _fake, addr = server.__enter__()
    sw = SwitchConnection("s", addr, 1).connect(str(P4INFO))
    try:
        server.__exit__(None, None, None)                  # the switch goes away
        with pytest.raises(SwitchConnectionError, match="stream channel closed"):
            for _ in range(10):                            # None only while it is still open
                sw.packet_in(timeout=1)
    finally:
        sw.close()
