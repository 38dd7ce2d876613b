"""The agent's switch-facing logic against the fake P4Runtime server: what it
writes on start, and how it treats a FIB it finds after a restart."""
from __future__ import annotations

import pytest

from controller.switch import p4names as N
from traffic.wire import defs
from controller.agent.process import Agent
from controller.switch.tables import Fib
from controller.routing.route import Route
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
            assert agent.fib_deletes_allowed                       # nothing to protect
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
            assert not agent.fib_deletes_allowed
            agent.router.accept_prefix("/A/1", 1, "02:00:01:00:00:01", 0.0)
            agent.router.tick(1.0)
            agent.write_fib()
            keys = set(Fib(agent.sw).read())
            assert keys == {names.prefix_key("/old"), names.prefix_key("/A/1")}
            agent.fib_deletes_allowed = True
            agent.write_fib()
            assert set(Fib(agent.sw).read()) == {names.prefix_key("/A/1")}
        finally:
            agent.sw.close()
